"""The flat modules of 0.1.0 (`cvae.metrics`, `cvae.semi`, ...), found where their names went.

0.2.0 put the package in layers (`cvae.models`, `cvae.data`, `cvae.training`, `cvae.hub`,
`cvae.evaluation`, `cvae.cli`). For one release, the old import paths that the docs showed
keep working: importing one gives a module whose names come from their new homes, with a
`DeprecationWarning` that names the new path. One finder does it for every old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED", "SUBPACKAGES", "install"]

SUBPACKAGES = ("models", "data", "training", "hub", "evaluation", "augmentation", "cli")

#: Old module (under `cvae.`) -> the modules its names live in now, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "backbones": ("cvae.models.backbones",),
    "likelihoods": ("cvae.models.likelihoods",),
    "loss": ("cvae.models.loss",),
    "model": ("cvae.models.conditional_vae",),
    "latent": ("cvae.models._latent",),
    "export": ("cvae.models._export",),
    "semi": ("cvae.data._semi", "cvae.models._semi", "cvae.evaluation.metrics", "cvae._classes"),
    "labels": ("cvae._classes",),
    "config": ("cvae._config", "cvae._checks"),
    "registry": ("cvae._registry",),
    "devices": ("cvae._devices",),
    "files": ("cvae._files",),
    "generate": ("cvae._generate",),
    "labelled": ("cvae.data._labelled", "cvae._classes"),
    "sources": ("cvae.data._sources", "cvae.models._from_data"),
    "folders": ("cvae.data._folders",),
    "hf_data": ("cvae.data._hf",),
    "splits": ("cvae.data._splits",),
    "trainer": ("cvae.training.trainer",),
    "callbacks": ("cvae.training.callbacks",),
    "checkpoint": ("cvae.training.checkpoint",),
    "compiling": ("cvae.training._compiling",),
    "distributed": ("cvae.training._distributed",),
    "optim": ("cvae.training._optim",),
    "feed": ("cvae.training._feed",),
    "hub_client": ("cvae.hub._client",),
    "hub_mixin": ("cvae.hub.mixin",),
    "layout": ("cvae.hub._layout",),
    "weights": ("cvae.hub._weights", "cvae.hub._safetensors"),
    "card": ("cvae.hub._card",),
    "metrics": ("cvae.evaluation.metrics", "cvae.evaluation._evaluate"),
    "diversity": ("cvae.evaluation.diversity",),
    "bayes": ("cvae.evaluation.bayes",),
    "classifier": ("cvae.evaluation.classifier",),
    "plots": ("cvae.evaluation.plots",),
    "report": ("cvae.evaluation._report",),
    "commands": ("cvae.cli._commands", "cvae.cli._train", "cvae.cli._eval"),
    "run_data": ("cvae.cli._run_data",),
}


class _MovedModule(types.ModuleType):
    """An old module path: each name is looked up in the modules it moved to."""

    def __init__(self, name: str, homes: tuple[str, ...]):
        super().__init__(name, f"Moved in cvae 0.2.0: see {', '.join(homes)}.")
        self._homes = homes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for home in self._homes:
            module = importlib.import_module(home)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (it moved to"
                             f" {' or '.join(self._homes)})")

    def __dir__(self) -> list[str]:
        return sorted({n for home in self._homes for n in dir(importlib.import_module(home))})


def _caller_level() -> int:
    """The `stacklevel` that points a warning at the code that imported, past importlib."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                 or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1
    return level


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        old = fullname.removeprefix("cvae.")
        if fullname.startswith("cvae.") and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name, MOVED[spec.name.removeprefix("cvae.")])

    def exec_module(self, module: types.ModuleType) -> None:
        homes = MOVED[module.__name__.removeprefix("cvae.")]
        public = [h for h in homes if not any(part.startswith("_") for part in h.split("."))]
        new = public[0].rsplit(".", 1)[0] if public else homes[0].rsplit(".", 1)[0]
        warnings.warn(f"{module.__name__} moved in cvae 0.2.0: import from {new} (or from cvae);"
                      f" the old path goes in the next release", DeprecationWarning,
                      stacklevel=_caller_level())


def install() -> None:
    """Put the finder on `sys.meta_path` (once)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())

"""The package's shape: imports flow one way, the Hub layer does not know the model, modules
stay small, and the training and evaluation code names no likelihood."""

import ast
from pathlib import Path

import cvae
from cvae.models.likelihoods import list_likelihoods

PACKAGE = Path(cvae.__file__).parent


def imports(path: Path) -> set[str]:
    """Every cvae module that `path` imports, at the top, in functions or for type checking."""
    module = name(path)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from . import hub` imports cvae.hub; `from . import __version__` imports cvae
            # (its __init__, which imports everything); `from .model import X`, cvae.models.conditional_vae.
            names = [base] if node.module else [f"{base}.{a.name}" for a in node.names]
            found |= {n if n in MODULES else base for n in names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name in MODULES and name != module}


def name(path: Path) -> str:
    return ".".join(["cvae", *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(
        ".__init__")


MODULES = {name(p) for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    """Module -> the cvae modules it imports; the package itself (its __init__) is "cvae"."""
    return {name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_the_import_graph_has_no_cycle():
    edges, done, path = graph(), set(), []

    def visit(node):
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node):], node]))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    edges = graph()
    edges["cvae.hub"] = edges["cvae.hub"] | {"cvae.models.conditional_vae"}  # what 0.1.0 did
    monkeypatch.setattr(__import__(__name__), "graph", lambda: edges)
    try:
        test_the_import_graph_has_no_cycle()
    except AssertionError as err:
        assert "cvae.hub" in str(err) and "cvae.models.conditional_vae" in str(err)
    else:
        raise AssertionError("the cycle went unnoticed")


def test_the_hub_layer_never_imports_the_model():
    edges = graph()
    for module in ("cvae.hub", "cvae.hub.mixin", "cvae.hub._client", "cvae.hub._layout", "cvae.hub._card",
                   "cvae._config", "cvae.hub._weights", "cvae._files", "cvae.models._latent", "cvae.models._export"):
        assert "cvae.models.conditional_vae" not in edges[module], module


def test_no_module_is_over_400_lines():
    long = {p.name: n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_training_and_evaluation_name_no_likelihood():
    """They call model.loss and the likelihood object; a new likelihood needs no edit there."""
    for name in ("trainer.py", "metrics.py", "commands.py"):
        text = (PACKAGE / name).read_text()
        assert not [lik for lik in list_likelihoods() if f'"{lik}"' in text], name

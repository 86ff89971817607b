"""What each `cvae` command does; `cvae.cli` parses the command line and calls these.

Each takes the parsed arguments. Everything heavy (torch, the model, the Hub client) is
imported inside the functions, so that `cvae --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cvae.cli._run_data import registered

if TYPE_CHECKING:
    import torch

    from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["load_model", "run_sample", "run_transfer", "run_interpolate", "run_export", "run_push",
           "run_list"]


def load_model(name: str | None) -> ConditionalVAE:
    """A model by name: the default bundled one (loaded once), a folder or a Hub repo id."""
    from cvae._generate import DEFAULT_MODEL, load_default_model
    from cvae.models.conditional_vae import ConditionalVAE

    if name is None or name == DEFAULT_MODEL:
        return load_default_model()
    return ConditionalVAE.from_pretrained(name)


def _images(args: argparse.Namespace, model: ConditionalVAE) -> tuple[torch.Tensor, Any]:
    """The input images and labels: files given with --images, else test-set images."""
    from cvae.data._folders import load_images
    from cvae.data._named import load_dataset

    if args.images:
        if not args.labels or len(args.labels) != len(args.images):
            raise ValueError(f"give one --labels value per image: {len(args.images)} images,"
                             f" {len(args.labels or [])} labels")
        return load_images(args.images, model.image_shape), args.labels
    # A folder or Hugging Face dataset is read in the model's shape, as the files above are.
    shape = {} if registered(args.dataset) else {"channels": model.image_shape[0],
                                                  "image_size": model.image_shape[1:]}
    test = load_dataset(args.dataset, args.data_root, train=False, **shape)
    model.match_classes(test.class_names, "input")  # the same index must mean the same class
    bad = [i for i in args.index if not 0 <= i < len(test)]
    if bad:
        raise ValueError(f"--index {bad[0]} is outside the {test.split} split's 0..{len(test) - 1}")
    return test.images[args.index], test.labels[args.index]


def run_transfer(args: argparse.Namespace) -> None:
    """`cvae transfer`: redraw images as other classes, keeping their style."""
    import torch

    from cvae.images import save_grid

    model = load_model(args.model)
    images, labels = _images(args, model)
    out = model.transfer(images, labels, args.to)
    targets = model._labels_to_tensor(list(range(model.num_classes)) if args.to is None else args.to)
    names = [model.class_names[t] if model.class_names else str(int(t)) for t in targets]
    grid = torch.cat([images.to(out.device, out.dtype)[:, None], out], 1).flatten(0, 1)
    path = save_grid(grid, args.output, nrow=len(names) + 1, scale=args.scale,
                     column_titles=["input", *names])
    print(f"wrote {len(images)} images redrawn as {len(names)} classes to {path}")


def run_interpolate(args: argparse.Namespace) -> None:
    """`cvae interpolate`: a strip between two images, or between two classes."""
    import torch

    from cvae._classes import describe
    from cvae.images import save_gif, save_grid

    model = load_model(args.model)
    if args.classes:
        generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
        strip = model.interpolate_classes(*args.classes, steps=args.steps, generator=generator)
        start, end = (describe(int(c), model.class_names) for c in model._labels_to_tensor(args.classes))
        what = f"{start} to {end}"
    else:
        images, labels = _images(args, model)
        strip = model.interpolate(images, labels, args.steps, args.method)
        what = f"two images ({args.method})"
    written = [save_grid(strip, args.output, nrow=len(strip), scale=args.scale)]
    if args.gif:
        written.append(save_gif(strip, args.gif, scale=args.scale))
    print(f"wrote {len(strip)} steps from {what} to " + " and ".join(map(str, written)))


def run_sample(args: argparse.Namespace) -> None:
    """`cvae sample`: a grid of new images of one class (or conditions), named in the message and file."""
    import torch

    from cvae.cli._conditions import condition_values, described
    from cvae.images import save_grid

    model = load_model(args.model)
    # A class name wins over an index; a part left out is unset.
    y = model._condition_input(args.label, condition_values(args.condition, model))
    what, stem = described(model, y)
    output = args.output or f"samples-{stem}.png"
    generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
    settings = {key: value for key in ("temperature", "sharpness", "guidance", "prior")
                if (value := getattr(args, key)) is not None}
    images = model.sample(y, args.n, generator=generator, **settings)
    path = save_grid(images, output, nrow=args.nrow, scale=args.scale,
                     description=f"{len(images)} samples of {what} from {args.model or 'the default model'}")
    print(f"wrote {len(images)} images of {what} to {path}")


def run_export(args: argparse.Namespace) -> None:
    """`cvae export`: the decoder and encoder as ONNX files."""
    from cvae.models._export import export_folder

    written = export_folder(load_model(args.model), args.output)
    print("wrote " + ", ".join(str(p) for p in written))


def run_push(args: argparse.Namespace) -> None:
    """`cvae push`: upload a model folder to the Hugging Face Hub."""
    from cvae.hub._pretrained import push_folder
    from cvae.models.conditional_vae import ConditionalVAE

    url = push_folder(args.folder, args.repo_id, model_class=ConditionalVAE,
                      commit_message=args.message, private=args.private or None,
                      token=args.token, branch=args.branch)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")


def run_list(args: argparse.Namespace) -> None:
    """`cvae list`: the bundled models and the registered parts."""
    from cvae.data._named import list_datasets
    from cvae.hub._layout import list_pretrained
    from cvae.models.backbones import list_backbones
    from cvae.models.likelihoods import list_likelihoods

    print("bundled models:", ", ".join(list_pretrained()))
    print("backbones:     ", ", ".join(list_backbones()))
    print("likelihoods:   ", ", ".join(list_likelihoods()))
    print("datasets:      ", ", ".join(list_datasets()))

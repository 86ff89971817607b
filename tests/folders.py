"""Image folders that tests make: one sub-folder of PNGs per class."""

import torch


def make_image_folder(root, classes=5, per_class=6, size=(32, 32), mode="RGB", seed=0):
    """A folder of PNGs, one sub-folder per class: class c's images have mean brightness c/5."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for c in range(classes):
        (root / f"class-{c}").mkdir(parents=True)
        for i in range(per_class):
            level = c / classes + 0.1 * torch.rand(size[0], size[1], 3 if mode == "RGB" else 1,
                                                  generator=g)
            pixels = (level * 255).to(torch.uint8).squeeze(-1).numpy()
            Image.fromarray(pixels, mode).save(root / f"class-{c}" / f"{i}.png")
    return root

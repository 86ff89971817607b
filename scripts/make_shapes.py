"""Make the shapes data set: coloured shapes whose every attribute can be measured back.

After dSprites (Matthey et al. 2017), in colour: each 32x32 RGB image holds one shape
(circle, square or triangle) on black, drawn at 4x and reduced (antialiased), with

- `size`: the square root of its area in pixels, 5 to 12;
- `rotation`: its turn as a share of its symmetry (a quarter turn for a square, a third
  for a triangle; a circle has none), 0 to 0.5: half the period, so that no two values
  draw the same shape (a square turned by 0.9 of a quarter turn is one turned by -0.1);
- `x`, `y`: its centre in pixels, far enough from the border to keep it whole;
- `hue`: its colour's hue, 0 to 0.75 (red through green to blue; short of the wrap back
  to red, so that hue is one number), at full saturation and value.

The folder gets the images and a `metadata.csv` in Hugging Face `imagefolder`'s
convention, so that `cvae train --dataset FOLDER` reads them with their conditions.
`measure_shapes` measures position, size and hue back from any image (samples too):
centroid and area of the shape's pixels, and the hue of their mean colour. Usage:

    python scripts/make_shapes.py /tmp/shapes --images 20000
"""

import argparse
import colorsys
import csv
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
SIDE, ZOOM = 32, 4
# Area of each shape for a circumradius of 1: what turns a size (sqrt of the area) into a radius.
AREA = {"circle": math.pi, "square": 2.0, "triangle": 3 * math.sqrt(3) / 4}
SYMMETRY = {"circle": 1, "square": 4, "triangle": 3}


def draw(shape: str, size: float, rotation: float, x: float, y: float, hue: float) -> Image.Image:
    """One shape, drawn at `ZOOM` times the size and reduced with a box filter."""
    big = Image.new("RGB", (SIDE * ZOOM, SIDE * ZOOM))
    pen = ImageDraw.Draw(big)
    colour = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 1.0, 1.0))
    radius = size / math.sqrt(AREA[shape]) * ZOOM
    cx, cy = (x + 0.5) * ZOOM, (y + 0.5) * ZOOM  # pixel centres: pixel i covers [i, i + 1)
    if shape == "circle":
        pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        corners = SYMMETRY[shape]
        turn = rotation * 2 * math.pi / corners
        pen.polygon(
            [
                (
                    cx + radius * math.sin(turn + 2 * math.pi * k / corners),
                    cy - radius * math.cos(turn + 2 * math.pi * k / corners),
                )
                for k in range(corners)
            ],
            fill=colour,
        )
    return big.resize((SIDE, SIDE), Image.Resampling.BOX)


def measure_shapes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Position (centroid, pixels), size (sqrt of the area) and hue of shapes on black, `(N, 3, H, W)`.

    A pixel's share of the shape is its brightest channel (the colours are at full value),
    so antialiased edges count in part; the hue is that of the shape's mean colour.
    """
    images = images.double().clamp(0, 1)
    weight = images.amax(1)  # (N, H, W): 1 inside the shape, a share on its edge
    mass = weight.sum((1, 2)).clamp(min=1e-9)
    ys = torch.arange(images.shape[2], dtype=images.dtype)[:, None]
    xs = torch.arange(images.shape[3], dtype=images.dtype)[None, :]
    mean = (images * weight[:, None]).sum((2, 3)) / (weight[:, None] * weight[:, None]).sum((2, 3)).clamp(
        min=1e-9
    )
    hue = torch.tensor([colorsys.rgb_to_hsv(*(c / max(c.max(), 1e-9)).tolist())[0] for c in mean])
    return {
        "x": ((weight * xs).sum((1, 2)) / mass).float(),
        "y": ((weight * ys).sum((1, 2)) / mass).float(),
        "size": mass.sqrt().float(),
        "hue": hue.float(),
    }


def attributes(rng: np.random.Generator) -> dict:
    """One image's attributes, drawn uniformly; the centre keeps the whole shape inside."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    size = rng.uniform(5, 12)
    margin = size / math.sqrt(AREA[shape]) + 1
    return {
        "shape": shape,
        "size": round(size, 3),
        "rotation": round(rng.uniform(0, 0.5), 3),
        "x": round(rng.uniform(margin, SIDE - 1 - margin), 3),
        "y": round(rng.uniform(margin, SIDE - 1 - margin), 3),
        "hue": round(rng.uniform(0, 0.75), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.images):
        row = attributes(rng)
        name = f"images/{i:06d}.png"
        draw(**row).save(folder / name)
        rows.append({"file_name": name, **row})
    with open(folder / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows):,} images and metadata.csv to {folder}")


if __name__ == "__main__":
    main()

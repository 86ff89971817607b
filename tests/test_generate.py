import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import cvae
from cvae._generate import load_default_model


def test_sample_shape_range_and_freshness():
    images = cvae.sample(3, 8)
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert not torch.equal(images, cvae.sample(3, 8))  # new each call


def test_sample_is_reproducible_with_a_generator():
    a = cvae.sample(5, 4, generator=torch.Generator().manual_seed(0))
    b = cvae.sample(5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_default_model_is_loaded_once():
    assert load_default_model() is load_default_model()


@pytest.mark.parametrize("digit, n, error", [
    (10, 4, ValueError), (-1, 4, ValueError), ("7", 4, TypeError), (7.0, 4, TypeError),
    (True, 4, TypeError), (7, 0, ValueError), (7, "16", TypeError),
])
def test_sample_refuses_bad_input(digit, n, error):
    with pytest.raises(error):
        cvae.sample(digit, n)


def test_sample_works_offline_in_a_fresh_process_without_torchvision(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    # nor torch._dynamo (seconds to import), which torch.eye on the meta device pulls in
    code = ("import sys, cvae; print(cvae.sample(3, 8).shape); "
            "print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.split("\n")[:2] == ["torch.Size([8, 1, 28, 28])", "False False"]


def test_make_grid_layout():
    images = torch.stack([torch.full((1, 2, 3), float(i)) for i in range(5)])
    grid = cvae.make_grid(images, nrow=3, padding=1, pad_value=-1)
    assert grid.shape == (1, 2 * 3 + 1, 3 * 4 + 1)
    assert grid[0, 1, 1] == 0 and grid[0, 1, 5] == 1 and grid[0, 4, 5] == 4
    assert grid[0, 4, 9] == -1  # the empty sixth cell is padding
    assert grid[0, 0, :].eq(-1).all()


@pytest.mark.parametrize("count, rows, columns", [(8, 2, 4), (16, 4, 4), (6, 2, 3), (7, 3, 3), (12, 3, 4)])
def test_the_default_grid_has_no_empty_cell_where_a_near_square_one_exists(count, rows, columns):
    """Before, 8 images made a 3 x 3 grid with an empty cell."""
    grid = cvae.make_grid(torch.rand(count, 1, 5, 5), padding=1)
    assert grid.shape == (1, rows * 6 + 1, columns * 6 + 1)


def test_save_grid_writes_a_png(tmp_path):
    path = cvae.save_grid(torch.rand(16, 1, 28, 28), tmp_path / "out" / "g.png", scale=2)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))
    rgb = cvae.save_grid(torch.rand(2, 3, 8, 8), tmp_path / "rgb.png")
    with Image.open(rgb) as image:
        assert image.mode == "RGB"

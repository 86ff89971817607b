"""Class transfer and interpolation on the bundled model, judged by the bundled classifier."""

import math

import pytest
import torch
from PIL import Image

import cvae
from cvae.cli import main
from cvae.evaluation.classifier import load_classifier
from cvae.models._latent import lerp, slerp


@pytest.fixture(scope="module")
def model():
    return cvae.ConditionalVAE.from_pretrained("mnist-mlp")


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_transfer_changes_the_class_and_keeps_the_code(model, classifier, mnist_test):
    x, y = mnist_test.images[:100], mnist_test.labels[:100]
    out = model.transfer(x, y)
    assert out.shape == (100, 10, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, model.transfer(x, y))  # posterior means: no noise
    drawn_as = classifier.predict(out.flatten(0, 1)).view(100, 10)
    assert (drawn_as == torch.arange(10)).float().mean() >= 0.9
    # The style survives: re-encoding an image redrawn as class j finds, among the 100
    # original codes, its own source image's code nearest.
    mu, _ = model.encode(x, y)
    for j in (0, 4, 9):
        again, _ = model.encode(out[:, j], torch.full((100,), j))
        assert (torch.cdist(again, mu).argmin(1) == torch.arange(100)).float().mean() >= 0.85
    some = model.transfer(x[:3], y[:3], to=[7, 2])
    torch.testing.assert_close(some, out[:3][:, [7, 2]])


def test_slerp_and_lerp_end_at_their_ends_and_slerp_keeps_the_norm():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    t = torch.linspace(0, 1, 7)
    for path in (lerp(a, b, t), slerp(a, b, t)):
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(slerp(a, b, t).norm(dim=1), torch.ones(7))
    assert lerp(a, b, t)[3].norm() == pytest.approx(math.sqrt(0.5))
    torch.testing.assert_close(slerp(a, 2 * a, t), lerp(a, 2 * a, t))  # parallel: a straight line


def test_interpolation_runs_from_one_reconstruction_to_the_other(model, mnist_test):
    x, y = mnist_test.images[:2], mnist_test.labels[:2]  # a 7 and a 2
    mu, _ = model.encode(x, y)
    ends = model.decode(mu, y)
    for method in ("slerp", "linear"):
        strip = model.interpolate(x, y, steps=9, method=method)
        assert strip.shape == (9, 1, 28, 28) and strip.min() >= 0 and strip.max() <= 1
        torch.testing.assert_close(strip[[0, -1]], ends, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(model.interpolate(x, y, 9, "slerp")[4],
                              model.interpolate(x, y, 9, "linear")[4])


def test_class_interpolation_keeps_the_code_and_moves_the_class(model, classifier):
    for seed in range(3):
        strip = model.interpolate_classes(1, 8, steps=6, generator=torch.Generator().manual_seed(seed))
        assert strip.shape == (6, 1, 28, 28)
        assert classifier.predict(strip[[0, -1]]).tolist() == [1, 8]
    z = torch.randn(20)
    strip = model.interpolate_classes(3, 3, steps=4, z=z)
    torch.testing.assert_close(strip, model.decode(z[None], torch.tensor([3])).expand(4, -1, -1, -1))


def test_cvae_transfer_and_interpolate_write_what_they_say(tmp_path, capsys):
    assert main(["transfer", "--index", "0", "1", "2", "-o", str(tmp_path / "t.png")]) == 0
    with Image.open(tmp_path / "t.png") as grid:  # 3 rows, 11 columns of 2x-scaled digits
        assert grid.size == (11 * 60 + 4, 14 + 3 * 60 + 4)
    assert main(["interpolate", "--index", "0", "1", "--steps", "6", "-o", str(tmp_path / "i.png"),
                 "--gif", str(tmp_path / "i.gif")]) == 0
    with Image.open(tmp_path / "i.png") as strip:
        assert strip.size == (6 * 60 + 4, 64)
    with Image.open(tmp_path / "i.gif") as gif:
        assert gif.n_frames == 10 and gif.size == (56, 56)  # there and back: 6 + 4 frames
    assert main(["interpolate", "--classes", "1", "7", "--seed", "0", "-o",
                 str(tmp_path / "c.png")]) == 0
    assert main(["transfer", "--images", str(tmp_path / "c.png"), "--labels", "3", "--to", "5", "6",
                 "-o", str(tmp_path / "from-file.png")]) == 0
    assert "redrawn as 2 classes" in capsys.readouterr().out
    assert main(["transfer", "--images", str(tmp_path / "c.png"), "-o", str(tmp_path / "x.png")]) == 2
    assert "give one --labels value per image" in capsys.readouterr().err

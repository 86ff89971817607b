"""What the recall studies share: the test digits they score against, and how they score.

The machine line and the data folder come from the maintained benchmarks' `common.py`.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import data_root, machine  # noqa: E402

__all__ = ["data_root", "machine", "test_digits", "embed", "sample_scores", "print_scores"]


def test_digits(test, digit: int, n: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of `digit`'s test images, drawn as `cvae eval` draws them
    (`cvae.evaluation.class_halves`, seed 0): the first stand for the data; the second, in the
    samples' place, give the real-against-real reference."""
    from cvae.evaluation import class_halves

    ours, other = class_halves(test.labels, digit, n, seed=0)
    return test.images[ours], test.images[other]


@torch.inference_mode()
def embed(classifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's features of `images`, 250 at a time (as the recall benchmarks take them)."""
    return torch.cat([classifier.embed(images[i:i + 250]) for i in range(0, len(images), 250)])


@torch.inference_mode()
def sample_scores(classifier, real: torch.Tensor, images: torch.Tensor, digit: int) -> tuple:
    """`(precision, recall, diversity, share recognised as digit)` of one digit's `images`
    against the features `real` of its test digits, as `cvae eval` measures them."""
    from cvae.evaluation.diversity import diversity_ratio, precision_recall

    fake = embed(classifier, images)
    share = (classifier(images).argmax(1) == digit).float().mean().item()
    return (*precision_recall(real, fake), diversity_ratio(real, fake), share)


def print_scores(scores: dict[str, list[tuple]], width: int = 22) -> None:
    """Each kind's `sample_scores`, averaged over its digits, one line a kind."""
    for kind, rows in scores.items():
        precision, recall, diversity, share = torch.tensor(rows).mean(0).tolist()
        print(f"{kind:>{width}}: precision {precision:.3f}, recall {recall:.3f}, diversity"
              f" {diversity:.3f}, recognised {100 * share:.2f}%")

"""Precision, recall, the diversity ratio and active units measure what they say."""

import pytest
import torch
from refusals import assert_refused

from cvae import ConditionalVAE
from cvae.evaluation.diversity import diversity_ratio, precision_recall
from cvae.evaluation.metrics import active_units


def brute_force(real, fake, k=3):
    """The paper's definition, one point at a time."""
    def radius(points, i):
        others = sorted(float((points[i] - points[j]).norm()) for j in range(len(points)) if j != i)
        return others[k - 1]

    def inside(point, centres):
        return any(float((point - centres[i]).norm()) <= radius(centres, i) for i in range(len(centres)))

    return (sum(inside(f, real) for f in fake) / len(fake), sum(inside(r, fake) for r in real) / len(real))


def test_precision_and_recall_follow_the_papers_definition():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(40, 5, generator=g)
    fake = torch.randn(30, 5, generator=g) * 0.6 + 0.8  # shifted and narrower
    ours = precision_recall(real, fake)
    assert ours == pytest.approx(brute_force(real, fake))
    assert 0 < ours[1] < ours[0] < 1  # narrow samples: mostly realistic, covering less


def test_identical_sets_score_one_and_far_sets_zero_and_a_collapse_has_no_recall():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(100, 8, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, real + 100) == (0.0, 0.0)
    collapsed = real[:1].repeat(50, 1) + 1e-3 * torch.randn(50, 8, generator=g)  # one image, drawn 50 times
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall <= 0.05


def test_the_diversity_ratio_is_the_spread_of_samples_over_the_spread_of_data():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(60, 4, generator=g)
    assert diversity_ratio(real, real.clone()) == pytest.approx(1.0)
    assert diversity_ratio(real, real * 0.5 + 3) == pytest.approx(0.5)
    with pytest.raises(ValueError) as err:
        diversity_ratio(real, real[:1])
    assert_refused("diversity-features", err.value)
    with pytest.raises(ValueError) as err:
        precision_recall(real, real[:3])
    assert_refused("precision-recall-features", err.value)


def test_active_units_count_what_varies_with_the_image_not_the_label():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    images, labels = torch.rand(200, 1, 6, 6, generator=g), torch.randint(0, 4, (200,), generator=g)
    model = ConditionalVAE((1, 6, 6), 4, 5, backbone_kwargs={"hidden_dims": [16]})
    with torch.no_grad():
        model.encoder.mu.weight.mul_(20)  # posterior means that vary with the image
        model.encoder.mu.weight[:2] = 0  # two units that see nothing
    assert active_units(model, (images, labels)) == 3
    with torch.no_grad():
        model.encoder.hidden[0].weight[:, :36] = 0  # the encoder ignores the image: a collapse
    assert active_units(model, (images, labels)) == 0  # though the means still differ by class
    with pytest.raises(ValueError) as err:
        active_units(model, (images[:4], torch.arange(4)))  # one image of each class
    assert_refused("active-units-few", err.value)

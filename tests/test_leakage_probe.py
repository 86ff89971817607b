"""`latent_leakage(probe="mlp")`: what a linear probe cannot read from the code, an MLP can."""

import pytest
import torch

from cvae.conditions import Categorical, Continuous, MultiLabel
from cvae.evaluation.conditions import _probe_score


def ring_codes(n, seed):
    """Class 0 near the centre, class 1 on a ring around it: the same mean, different shapes."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * 6.283
    radius = torch.where(label == 1, 2.0, 0.3) + 0.1 * torch.randn(n, generator=g)
    codes = torch.stack([radius * angle.cos(), radius * angle.sin()], 1).double()
    return codes, label.double()[:, None]


def test_an_mlp_reads_a_class_whose_codes_differ_in_shape_not_in_mean():
    (x, y), (x_test, y_test) = ring_codes(2000, 0), ring_codes(1000, 1)
    part = Categorical("shape", 2)
    linear = _probe_score(part, x, y, x_test, y_test, "linear", 0)
    mlp = _probe_score(part, x, y, x_test, y_test, "mlp", 0)
    assert linear["accuracy"] < linear["chance"] + 0.08 < 0.65
    assert mlp["accuracy"] > 0.95
    # the same as a set of one tag ("outer"): a 0/1 column, not a value to regress
    tag = MultiLabel("where", ("outer",))
    assert _probe_score(tag, x, y, x_test, y_test, "mlp", 0)["accuracy"] > 0.95
    # a value that is the radius: no straight line through the codes gives it
    radius = x.norm(dim=1, keepdim=True)
    value = Continuous("radius")
    assert _probe_score(value, x, radius, x_test, x_test.norm(dim=1, keepdim=True), "linear", 0)["r2"] < 0.1
    assert _probe_score(value, x, radius, x_test, x_test.norm(dim=1, keepdim=True), "mlp", 0)["r2"] > 0.9


def test_an_unknown_probe_is_refused():
    from cvae.evaluation import latent_leakage

    with pytest.raises(ValueError, match=r"probe must be one of \['linear', 'mlp'\], got 'tree'"):
        latent_leakage(None, None, None, probe="tree")

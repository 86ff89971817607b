"""Classification by Bayes' rule over a conditional model's p(x | y) (`cvae.evaluation.bayes`)."""

import json
import subprocess
import sys

import pytest
import torch

import cvae
from cvae.evaluation.bayes import bayes_accuracy, class_log_posterior


@pytest.fixture(scope="module")
def mlp():
    return cvae.ConditionalVAE.from_pretrained("mnist-mlp")


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test.images[:1000], mnist_test.labels[:1000]


def test_the_tutorial_model_classifies_digits_by_bayes_rule(mlp, digits):
    one = bayes_accuracy(mlp, digits, k=1, generator=torch.Generator().manual_seed(0))
    ten = bayes_accuracy(mlp, digits, k=10, generator=torch.Generator().manual_seed(0))
    assert one["accuracy"] >= 0.94 and ten["accuracy"] >= 0.97  # chance is 0.10
    assert len(ten["accuracy_per_class"]) == 10 and min(ten["accuracy_per_class"]) >= 0.9


def test_the_posterior_is_normalised_seeded_and_follows_the_class_prior(mlp, digits):
    images = digits[0][:50]
    log_p = class_log_posterior(mlp, images, k=2, generator=torch.Generator().manual_seed(1))
    assert log_p.shape == (50, 10) and log_p.dtype == torch.float64
    assert torch.allclose(log_p.exp().sum(1), torch.ones(50, dtype=torch.float64))
    again = class_log_posterior(mlp, images, k=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(log_p, again)
    # A prior that all but rules out every class but 3 decides every image.
    prior = [1.0] * 10
    prior[3] = 1e200
    leaning = class_log_posterior(mlp, images, k=2, class_prior=prior,
                                  generator=torch.Generator().manual_seed(1))
    assert (leaning.argmax(1) == 3).all() and not (log_p.argmax(1) == 3).all()
    # A prior in proportion to what it was anyway (uniform, scaled) changes nothing.
    scaled = class_log_posterior(mlp, images, k=2, class_prior=torch.full((10,), 7.0),
                                 generator=torch.Generator().manual_seed(1))
    assert torch.allclose(scaled, log_p)


def test_cvae_eval_reports_the_bayes_rule_accuracy(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cvae.cli", "eval", "mnist-mlp", "--limit", "300",
                          "--bayes-k", "2", "-k", "2", "--iwae-images", "20",
                          "--samples-per-class", "10", "-o", str(tmp_path / "eval.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "classified by Bayes' rule, k=2" in out.stdout
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["bayes_k"] == 2 and results["bayes_accuracy"] >= 0.9
    assert results["bayes_seconds"] > 0

"""The bundled models do what their cards say, judged by the bundled classifier."""

import pytest
import torch
from cards import ACCURACY, IWAE, NELBO, card_metrics
from torch import nn

import cvae
from cvae._generate import DEFAULT_MODEL, load_default_model
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.metrics import sample_accuracy


def test_bundled_classifier_is_strong(mnist_test):
    predicted = load_classifier().predict(mnist_test.images)
    assert (predicted == mnist_test.labels).float().mean().item() >= 0.993


@pytest.mark.parametrize("name, mean, each", [("mnist-conv", 0.99, 0.98), ("mnist-mlp", 0.94, 0.85)])
def test_bundled_models_draw_the_digit_asked_for(name, mean, each):
    model = cvae.ConditionalVAE.from_pretrained(name)
    accuracies = sample_accuracy(model, load_classifier(), n_per_class=500,
                                 generator=torch.Generator().manual_seed(1))
    assert len(accuracies) == 10
    assert sum(accuracies) / 10 >= mean and min(accuracies) >= each


def one_label(name):
    """Whether a bundled model is conditioned on the digit alone (mnist-morpho is on three parts)."""
    return cvae.ConditionalVAE.from_pretrained(name).conditions.is_single


def test_the_default_model_is_the_best_bundled_one():
    """Best on every measure of the cards: the ELBO, the IWAE bound and sample accuracy, among
    the models conditioned on the digit alone (a model told more about each image scores a
    lower ELBO for it, which is no comparison)."""
    figures = {name: card_metrics(name) for name in cvae.list_pretrained() if one_label(name)}
    assert len(figures) >= 2
    for measure, best in ((NELBO, min), (IWAE, min), (ACCURACY, max)):
        assert best(figures, key=lambda name: figures[name][measure]) == DEFAULT_MODEL
    assert load_default_model().config == cvae.ConditionalVAE.from_pretrained(DEFAULT_MODEL).config


class AlwaysThree(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.bias.expand(len(x), 10) + 5 * torch.nn.functional.one_hot(
            torch.full((len(x),), 3), 10)


def test_sample_accuracy_counts_per_class():
    accuracies = sample_accuracy(load_default_model(), AlwaysThree(), n_per_class=20)
    assert accuracies == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]

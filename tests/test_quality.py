"""The bundled models do what their cards say, judged by the bundled classifier."""

import torch
from torch import nn

from cvae.classifier import load_classifier
from cvae.generate import load_default_model
from cvae.metrics import sample_accuracy


def test_bundled_classifier_is_strong(mnist_test):
    predicted = load_classifier().predict(mnist_test.images)
    assert (predicted == mnist_test.labels).float().mean().item() >= 0.993


def test_default_model_draws_the_digit_asked_for():
    accuracies = sample_accuracy(load_default_model(), load_classifier(), n_per_class=500,
                                 generator=torch.Generator().manual_seed(0))
    assert len(accuracies) == 10
    assert sum(accuracies) / 10 >= 0.94


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

"""The tutorial's model and loss, written out as it was: the baseline of the benchmarks."""

import torch
import torch.nn.functional as F
from torch import nn


class TutorialCVAE(nn.Module):
    """The tutorial's model, written out as it was."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784 + 10, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20 + 10, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x, c):
        h1 = F.relu(self.fc1(torch.cat([x, c], 1)))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z, c):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(torch.cat([z, c], 1)))))

    def forward(self, x, c):
        mu, logvar = self.encode(x.view(-1, 784), c)
        return self.decode(self.reparameterize(mu, logvar), c), mu, logvar


def tutorial_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld

import pytest
import torch
import torch.nn.functional as F

from cvae import vae_loss
from cvae.models.loss import kl_divergence


def tutorial_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld, bce, kld


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=g)
    logits = torch.randn(6, 1, 28, 28, generator=g) * 3
    mu, logvar = torch.randn(6, 20, generator=g), torch.randn(6, 20, generator=g)
    return logits, x, mu, logvar


def test_matches_the_tutorial_formula(batch):
    logits, x, mu, logvar = batch
    ours = vae_loss(torch.sigmoid(logits), x, mu, logvar)
    for got, want in zip(ours, tutorial_loss(torch.sigmoid(logits), x, mu, logvar)):
        torch.testing.assert_close(got, want)


def test_logits_form_equals_probability_form(batch):
    logits, x, mu, logvar = batch
    a = vae_loss(torch.sigmoid(logits), x, mu, logvar)
    b = vae_loss(logits, x, mu, logvar, logits=True)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=1e-3)


def test_reductions_and_beta(batch):
    logits, x, mu, logvar = batch
    total = vae_loss(logits, x, mu, logvar, logits=True)
    per_image = vae_loss(logits, x, mu, logvar, reduction="none", logits=True)
    mean = vae_loss(logits, x, mu, logvar, reduction="mean", logits=True)
    assert per_image.loss.shape == (6,)
    torch.testing.assert_close(per_image.loss.sum(), total.loss)
    torch.testing.assert_close(mean.loss, total.loss / 6)
    weighted = vae_loss(logits, x, mu, logvar, beta=4.0, logits=True)
    torch.testing.assert_close(weighted.loss, total.reconstruction + 4.0 * total.kl)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 5)
    assert torch.equal(kl_divergence(zeros, zeros), torch.zeros(3))
    assert (kl_divergence(torch.ones(3, 5), zeros) > 0).all()
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    torch.testing.assert_close(kl_divergence(torch.ones(3, 5), zeros), torch.full((3,), 2.5))


def test_saturated_decoder_gives_finite_loss_and_gradients():
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    probs = torch.tensor([[1.0, 0.0, 1.0, 0.0]], requires_grad=True)  # wrong and certain
    mu = torch.zeros(1, 2, requires_grad=True)
    logvar = torch.zeros(1, 2, requires_grad=True)
    out = vae_loss(probs, x, mu, logvar)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss > 100  # clamped log, not inf
    assert torch.isfinite(probs.grad).all()
    logits = torch.tensor([[200.0, -200.0, 200.0, -200.0]], requires_grad=True)
    out = vae_loss(logits, x, mu, logvar, logits=True)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(logits.grad).all()
    torch.testing.assert_close(out.loss, torch.tensor(400.0))


def test_as_dict_gives_floats(batch):
    logits, x, mu, logvar = batch
    d = vae_loss(logits, x, mu, logvar, logits=True).as_dict()
    assert set(d) == {"loss", "reconstruction", "kl"}
    assert all(isinstance(v, float) for v in d.values())


def test_bad_shapes_and_reduction(batch):
    logits, x, mu, logvar = batch
    with pytest.raises(ValueError, match="shape"):
        vae_loss(logits[:, :, :27], x, mu, logvar, logits=True)
    with pytest.raises(ValueError, match="mu"):
        vae_loss(logits, x, mu[:3], logvar, logits=True)
    with pytest.raises(ValueError, match="reduction"):
        vae_loss(logits, x, mu, logvar, reduction="avg", logits=True)

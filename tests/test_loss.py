import pytest
import torch
import torch.nn.functional as F

from cvae import ConditionalVAE, vae_loss
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


def test_the_posterior_object_is_the_gaussian_that_torch_knows():
    from cvae.models import DiagonalGaussian

    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q = DiagonalGaussian(mean, logvar)
    reference = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    z = torch.randn(4, 5, 3, generator=g)  # four draws of each row
    torch.testing.assert_close(q.log_prob(z), reference.log_prob(z).sum(-1))
    standard = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(q.kl(), torch.distributions.kl_divergence(reference, standard).sum(-1))
    torch.testing.assert_close(DiagonalGaussian.standard_log_prob(z), standard.log_prob(z).sum(-1))
    eps = torch.randn(5, 3, generator=g)
    assert torch.equal(q.rsample(noise=eps), mean + eps * (0.5 * logvar).exp())
    assert torch.equal(q.mode(), mean)
    with pytest.raises(ValueError, match="one shape"):
        DiagonalGaussian(mean, logvar[:, :2])


def test_the_model_the_loss_and_the_bound_share_the_posterior():
    """One object, so the model's posterior is the loss's KL and the IWAE bound's q."""
    from cvae.models import DiagonalGaussian

    torch.manual_seed(0)
    model = ConditionalVAE(latent_dim=4, backbone_kwargs={"hidden_dims": [16]}).eval()
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    q = model.posterior(x, y)
    assert isinstance(q, DiagonalGaussian)
    noise = torch.randn(6, 4)
    terms = model.loss(x, y, noise=noise, reduction="none")
    torch.testing.assert_close(terms.kl, q.kl())

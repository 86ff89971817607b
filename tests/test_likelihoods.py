"""The three likelihoods: proper densities, the right means, and models that train with each."""

import math

import pytest
import torch
import torch.nn.functional as F

import cvae
from cvae import ConditionalVAE, Trainer, vae_loss
from cvae.models.likelihoods import Bernoulli, ContinuousBernoulli, Gaussian

ETAS = torch.tensor([-30.0, -6.0, -1.0, -0.05, -1e-3, 0.0, 1e-3, 0.05, 1.0, 6.0, 30.0],
                    dtype=torch.float64)


def integrate(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(values, x, dim=-1)


def test_continuous_bernoulli_is_a_density_on_the_unit_interval_with_its_mean():
    x = torch.linspace(0, 1, 200001, dtype=torch.float64)
    eta = ETAS[:, None].expand(-1, len(x))
    cb = ContinuousBernoulli()
    density = torch.exp(-cb(eta, x.expand_as(eta)))
    torch.testing.assert_close(integrate(density, x), torch.ones(len(ETAS), dtype=torch.float64),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cb.mean(ETAS), integrate(density * x, x),
                               rtol=1e-4, atol=1e-4)
    # the Bernoulli's "mean" sigmoid(eta) is not the continuous Bernoulli's
    assert cb.mean(torch.tensor(2.0)) < torch.sigmoid(torch.tensor(2.0)) - 0.1


def test_bernoulli_is_the_tutorials_bce_and_gaussian_the_normal_density():
    g = torch.Generator().manual_seed(0)
    x, eta = torch.rand(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    torch.testing.assert_close(Bernoulli()(eta, x),
                               F.binary_cross_entropy(torch.sigmoid(eta), x, reduction="none"))
    log_scale = torch.tensor([-1.0, 0.0, 0.5])
    normal = torch.distributions.Normal(eta, log_scale.exp().view(3, 1, 1))
    gaussian = Gaussian((3, 5, 5)).eval()  # in eval mode, the stored scale
    with torch.no_grad():
        gaussian.log_scale.copy_(log_scale)
    torch.testing.assert_close(gaussian(eta, x), -normal.log_prob(x))
    # In training, the scale is the batch's root mean squared error over all its channels
    # (one for all: the channels' own errors differ here), and the stored scale moves a
    # tenth of the way there; no gradient reaches it.
    eta[:, 0] *= 3  # the first channel fitted far worse than the others
    assert (x - eta).pow(2).mean((0, 2, 3)).sqrt().std() > 0.5
    rms = (x - eta).pow(2).mean().sqrt().expand(3)
    calibrated = torch.distributions.Normal(eta, rms.view(3, 1, 1))
    nll = gaussian.train()(eta, x)
    torch.testing.assert_close(nll, -calibrated.log_prob(x))
    torch.testing.assert_close(gaussian.log_scale, 0.9 * log_scale + 0.1 * rms.log())
    stored = gaussian.log_scale.clone()
    with torch.no_grad():  # without gradients, nothing is trained: the stored scale, kept
        torch.testing.assert_close(gaussian(eta, x), -torch.distributions.Normal(
            eta, stored.exp().view(3, 1, 1)).log_prob(x))
    assert gaussian.log_scale.equal(stored) and not gaussian.log_scale.requires_grad


def test_vae_loss_takes_logits_or_the_parameter_for_each_likelihood():
    g = torch.Generator().manual_seed(1)
    x, eta = torch.rand(4, 1, 6, 6, generator=g), torch.randn(4, 1, 6, 6, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    for name, parameter in (("bernoulli", eta.sigmoid()), ("continuous-bernoulli", eta.sigmoid()),
                            ("gaussian", eta)):
        scale = torch.zeros(1) if name == "gaussian" else None
        a = vae_loss(eta, x, mu, logvar, logits=True, likelihood=name, log_scale=scale)
        b = vae_loss(parameter, x, mu, logvar, likelihood=name, log_scale=scale)
        torch.testing.assert_close(a.loss, b.loss, rtol=1e-4, atol=1e-3)
    bernoulli = vae_loss(eta, x, mu, logvar, logits=True)
    continuous = vae_loss(eta, x, mu, logvar, logits=True, likelihood="continuous-bernoulli")
    # the normaliser log C >= log 2 > 0 per pixel: the continuous form scores every image higher
    assert continuous.reconstruction < bernoulli.reconstruction - 36 * 4 * math.log(2) + 1e-3


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous-bernoulli", "gaussian"])
def test_a_model_trains_saves_and_samples_with_each_likelihood(mnist_small, likelihood, tmp_path):
    torch.manual_seed(0)
    model = ConditionalVAE(likelihood=likelihood)
    history = Trainer(model, mnist_small, epochs=2, seed=0, verbose=False).train()
    assert history[1]["loss"] < history[0]["loss"]
    if likelihood == "gaussian":
        # Calibrated to the batches' error: in 32 steps, Adam (about lr a step) could have
        # taken the scale from 1 to 0.97 at most.
        assert model.likelihood.log_scale.exp().item() < 0.5
    model.save_pretrained(tmp_path)
    loaded = ConditionalVAE.from_pretrained(tmp_path)
    assert loaded.likelihood.name == loaded.config["likelihood"] == likelihood
    g = torch.Generator().manual_seed(0)
    images = loaded.sample(3, 8, generator=g)
    assert torch.equal(images, model.cpu().sample(3, 8, generator=torch.Generator().manual_seed(0)))
    if likelihood != "gaussian":
        assert images.min() >= 0 and images.max() <= 1


def test_the_gaussian_likelihood_takes_values_outside_the_unit_interval():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(64, 2, 6, 6, generator=g) * 3, torch.randint(0, 3, (64,), generator=g)
    model = ConditionalVAE((2, 6, 6), 3, 4, likelihood="gaussian")
    history = Trainer(model, (images, labels), epochs=3, batch_size=16, verbose=False).train()
    assert history[-1]["loss"] < history[0]["loss"]
    with pytest.raises(ValueError, match="likelihood='gaussian'"):
        Trainer(ConditionalVAE((2, 6, 6), 3, 4), (images, labels), verbose=False)


def test_kl_warm_up_weights_the_kl_term_from_zero(mnist_small):
    data = (mnist_small.images[:512], mnist_small.labels[:512])
    plain = Trainer(ConditionalVAE(), data, epochs=1, seed=0, verbose=False).train()[0]
    assert plain["loss"] == pytest.approx(plain["reconstruction"] + plain["kl"], rel=1e-5)
    warm = Trainer(ConditionalVAE(), data, epochs=1, seed=0, verbose=False, warmup_epochs=2).train()[0]
    # four steps at weights 1/8, 2/8, 3/8, 4/8 of the KL: well under half of it on average
    assert warm["reconstruction"] < warm["loss"] < warm["reconstruction"] + 0.5 * warm["kl"]
    assert cvae.list_likelihoods() == ["bernoulli", "continuous-bernoulli", "gaussian"]


class Laplace(cvae.Likelihood):
    """The docs' example: the whole of a new likelihood."""

    label = "Laplace NLL"
    value_range = (-math.inf, math.inf)

    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.log_scale = torch.nn.Parameter(torch.zeros(image_shape[0]))

    def forward(self, eta, x):
        log_b = self.log_scale.view(-1, 1, 1)
        return (x - eta).abs() * torch.exp(-log_b) + log_b + math.log(2)

    def mean(self, eta):
        return eta


@pytest.fixture
def laplace():
    cvae.register_likelihood("laplace-test", Laplace, overwrite=True)
    yield "laplace-test"
    cvae.models.likelihoods._REGISTRY._items.pop("laplace-test")


def test_a_registered_likelihood_works_everywhere_with_no_other_edit(laplace, mnist_small, tmp_path,
                                                                    capsys):
    from cvae.cli import main
    from cvae.evaluation.metrics import elbo, iwae_bound

    # a density: it integrates to 1 over the real line
    x = torch.linspace(-30, 30, 600001, dtype=torch.float64)
    density = torch.exp(-Laplace((1, 1, 1)).double()(torch.full_like(x, 0.3)[None, None, :, None],
                                                     x[None, None, :, None]))
    assert torch.trapezoid(density.flatten(), x).item() == pytest.approx(1.0, abs=1e-4)

    data = (mnist_small.images[:512], mnist_small.labels[:512])
    model = ConditionalVAE(likelihood=laplace)
    trainer = Trainer(model, data, epochs=2, seed=0, verbose=False)
    history = trainer.train()
    assert history[1]["loss"] < history[0]["loss"]
    assert model.likelihood.log_scale.item() < 0  # learned, with the other weights
    assert trainer.evaluate(data)["nelbo"] == elbo(
        model, data, generator=torch.Generator(trainer.device).manual_seed(trainer.seed + 1))["nelbo"]
    assert math.isfinite(iwae_bound(model, data, k=2))
    model.save_pretrained(tmp_path / "m")
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert torch.equal(loaded.likelihood.log_scale, model.likelihood.log_scale.cpu())

    # the command line takes it by name, and tables use its label
    assert main(["train", "--likelihood", laplace, "--epochs", "1", "--limit", "256",
                 "--hidden-dims", "16", "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["eval", str(tmp_path / "run"), "--limit", "64", "-k", "2",
                 "--samples-per-class", "4", "-o", str(tmp_path / "eval.json")]) == 0
    assert "reconstruction (Laplace NLL)" in capsys.readouterr().out
    assert main(["list"]) == 0 and laplace in capsys.readouterr().out

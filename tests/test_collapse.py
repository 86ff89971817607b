"""Posterior collapse: the Trainer counts active units each epoch, warns when none is left,
and free bits keep the KL term from pushing units onto the prior."""

import logging

import pytest
import torch
import torch.nn.functional as F
from refusals import assert_refused

from cvae import ConditionalVAE, Trainer, vae_loss
from cvae.evaluation.diversity import diversity_ratio
from cvae.models.likelihoods import grey_level, suited_likelihood


def test_free_bits_charge_each_unit_at_least_that_much_and_report_the_true_kl():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 4, 4, generator=g)
    logits = torch.randn(8, 1, 4, 4, generator=g)
    mu = torch.cat([torch.zeros(8, 2), 3 * torch.randn(8, 2, generator=g)], 1).requires_grad_()
    logvar = torch.zeros(8, 4)
    plain = vae_loss(logits, x, mu, logvar, logits=True)
    free = vae_loss(logits, x, mu, logvar, logits=True, free_bits=0.5)
    per_unit = 0.5 * mu.detach().pow(2).mean(0)  # KL of N(mu, 1) against N(0, 1), per unit
    assert per_unit[:2].tolist() == [0, 0] and (per_unit[2:] > 0.5).all()
    assert free.kl == plain.kl  # the true KL
    charged = 8 * (0.5 + 0.5 + per_unit[2:].sum().item())  # two units at the floor, two above
    assert free.loss.item() == pytest.approx(plain.reconstruction.item() + charged)
    (grad,) = torch.autograd.grad(free.loss, mu)
    assert (grad[:, :2] == 0).all() and (grad[:, 2:] != 0).all()  # units under the floor are not pushed
    mean = vae_loss(logits, x, mu, logvar, logits=True, free_bits=0.5, reduction="mean")
    assert mean.loss.item() == pytest.approx(free.loss.item() / 8)
    with pytest.raises(ValueError) as err:
        vae_loss(logits, x, mu, logvar, logits=True, free_bits=0.5, reduction="none")
    assert_refused("loss-free-bits-none", err.value)
    with pytest.raises(ValueError) as err:
        Trainer(ConditionalVAE((1, 4, 4), 2, 2), (x, torch.zeros(8, dtype=torch.long)), free_bits=-1)
    assert_refused("train-free-bits", err.value)


def noise_data(n=300):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def collapse_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "collapsed" in r.getMessage()]


def test_a_collapsed_run_is_warned_about_once_and_a_healthy_one_not(mnist_small, caplog):
    caplog.set_level(logging.WARNING)
    torch.manual_seed(0)
    model = ConditionalVAE((1, 6, 6), 3, 4, backbone_kwargs={"hidden_dims": [32]})
    # Pixel noise holds nothing the encoder can cheaply pass on: the posterior collapses.
    # A short run (30 steps) is judged at its end, not by a step count: collapsed, with a
    # loss that no longer falls, so the advice is not to train longer.
    history = Trainer(model, noise_data(), epochs=3, batch_size=32, seed=0, verbose=False,
                      progress=False).train()
    assert [h["active_units"] for h in history] == [0, 0, 0]
    (warning,) = [r.getMessage() for r in caplog.records if "latent unit" in r.getMessage()]
    assert warning.startswith("cvae: posterior collapse: at the end of the run no latent unit varies")
    assert "free_bits" in warning and "train longer" not in warning and len(warning) < 380
    assert "the conditions alone fix each image" in warning  # the one case where a collapse is right
    # A Bernoulli model of grey images is told of the Gaussian likelihood once, by the advice.
    (advice,) = [r.getMessage() for r in caplog.records if "draws them as dim blurs" in r.getMessage()]
    assert "likelihood='gaussian'" in advice and len(advice) < 250
    # A longer one (300 steps an epoch) is warned at the second epoch without a unit; a
    # Gaussian model is not told to use the Gaussian likelihood.
    caplog.clear()
    torch.manual_seed(0)
    model = ConditionalVAE((1, 6, 6), 3, 4, backbone_kwargs={"hidden_dims": [32]}, likelihood="gaussian")
    history = Trainer(model, noise_data(), epochs=3, batch_size=1, seed=0, verbose=False,
                      progress=False).train()
    assert [h["active_units"] for h in history] == [0, 0, 0]
    (warning,) = collapse_warnings(caplog)  # and the verdict at the end says it again
    assert "posterior collapsed in epoch 2, after 600 optimizer steps" in warning
    assert "more epochs" not in warning and "likelihood='gaussian'" not in warning
    assert "Try free_bits" in warning and len(warning) < 420
    # A Gaussian model stuck in its first steps needs a clipped gradient, which neither free
    # bits nor a KL warm-up replace (experiments/colour-collapse/).
    assert "max_grad_norm=100" in warning
    (verdict,) = [m for m in map(logging.LogRecord.getMessage, caplog.records)
                  if m.startswith("cvae: posterior collapse:")]
    assert "likelihood='gaussian'" not in verdict
    caplog.clear()
    torch.manual_seed(0)
    history = Trainer(ConditionalVAE(), mnist_small, epochs=2, seed=0, verbose=False,
                      progress=False).train()
    assert all(h["active_units"] >= 15 for h in history)  # of 20
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_a_posterior_that_has_not_learned_yet_is_not_called_collapsed(mnist_train, caplog):
    # The conv backbone on 1,800 digits shrunk to 8x8 (15 steps an epoch) has no active
    # unit after two epochs, and most of them a few epochs later.
    caplog.set_level(logging.WARNING)
    train = shrunk(mnist_train, 1800, 8)
    torch.manual_seed(0)
    model = ConditionalVAE.from_data(train, backbone="conv")
    history = Trainer(model, train, epochs=12, seed=0, verbose=False, progress=False).train()
    units = [h["active_units"] for h in history]
    assert units[:2] == [0, 0] and units[-1] >= 10, units
    assert collapse_warnings(caplog) == []


def test_free_bits_are_a_setting_of_the_run(tmp_path):
    x, y = noise_data(64)
    torch.manual_seed(0)
    Trainer(ConditionalVAE((1, 6, 6), 3, 4), (x, y), epochs=1, verbose=False, progress=False,
            checkpoint_dir=tmp_path, free_bits=0.25).train()
    with pytest.raises(ValueError, match="free_bits: 0.25 there, 0.0 here"):
        Trainer(ConditionalVAE((1, 6, 6), 3, 4), (x, y), epochs=2, verbose=False, progress=False,
                checkpoint_dir=tmp_path, resume=True)


def test_images_with_grey_levels_get_advice_to_change_the_likelihood(mnist_small, caplog):
    from cvae.data import load_dataset

    caplog.set_level(logging.WARNING)
    g = torch.Generator().manual_seed(0)
    photos = torch.rand(64, 3, 8, 8, generator=g), torch.zeros(64, dtype=torch.long)
    Trainer(ConditionalVAE((3, 8, 8), 1, 2), photos, epochs=0, verbose=False)
    advice = [r.getMessage() for r in caplog.records if "have grey levels" in r.getMessage()]
    assert len(advice) == 1 and "a pixel lies 0.25 from 0 or 1" in advice[0]
    assert "likelihood='gaussian'" in advice[0]
    caplog.clear()
    Trainer(ConditionalVAE((3, 8, 8), 1, 2, likelihood="gaussian"), photos, epochs=0, verbose=False)
    Trainer(ConditionalVAE(), mnist_small, epochs=0, verbose=False)
    assert caplog.records == []
    # The figures that the advice, GREY_LEVEL's docstring and the guide quote.
    bernoulli = ConditionalVAE().likelihood
    for name, distance in (("mnist", 0.03), ("fashion-mnist", 0.12)):
        images = load_dataset(name).images[:10000]
        assert round(grey_level(images), 2) == distance
        assert (bernoulli.advice(images) is None) == (name == "mnist")
    digits = load_dataset("mnist").images[:10000]
    assert [round(grey_level(F.interpolate(digits, size=s, mode="area")), 2) for s in (14, 8)] == [0.05, 0.09]


def test_the_likelihood_that_suits_the_data_is_the_default_of_a_model_built_from_them(mnist_small):
    assert suited_likelihood(mnist_small.images) == "bernoulli"
    assert suited_likelihood(F.interpolate(mnist_small.images, size=8, mode="area")) == "gaussian"
    assert suited_likelihood(mnist_small.images * 2 - 1) == "gaussian"  # normalised to [-1, 1]
    assert ConditionalVAE.from_data(mnist_small).config["likelihood"] == "bernoulli"
    grey = torch.full((30, 1, 4, 4), 0.5), torch.arange(30) % 3
    assert ConditionalVAE.from_data(grey).config["likelihood"] == "gaussian"
    assert ConditionalVAE.from_data(grey, likelihood="bernoulli").config["likelihood"] == "bernoulli"
    assert ConditionalVAE.from_data(grey, likelihood="bernoulli").config["likelihood"] == "bernoulli"


def shrunk(data, n, size):
    """`n` images of `data`, drawn with a fixed seed and shrunk to `size` x `size`."""
    picks = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n]
    return F.interpolate(data.images[picks], size=size, mode="area"), data.labels[picks]


def spread(model, test, per_class=200, prior=None):
    """The mean diversity ratio over the classes, and how many samples are one flat grey."""
    samples = [model.sample(c, per_class, generator=torch.Generator().manual_seed(c),
                            mixed_precision=False, prior=prior).flatten(1) for c in range(10)]
    ratio = sum(diversity_ratio(test[0][test[1] == c].flatten(1), samples[c]) for c in range(10)) / 10
    return ratio, sum((s.std(1) < 0.02).sum().item() for s in samples)


def test_a_small_odd_size_data_set_keeps_its_latent_units_and_its_variety_with_the_defaults(
        mnist_train, mnist_test):
    # A tenth of MNIST shrunk to 8x8: the interpolation greys the digits' edges.
    train, test = shrunk(mnist_train, 6000, 8), shrunk(mnist_test, 2000, 8)
    runs = {}
    for likelihood in ("auto", "bernoulli", "continuous-bernoulli"):  # the defaults first
        torch.manual_seed(0)
        model = ConditionalVAE.from_data(train, likelihood=likelihood, backbone="mlp")  # measured so
        history = Trainer(model, train, epochs=10, seed=0, verbose=False, progress=False).train()
        runs[likelihood] = (model.config["likelihood"], history[-1]["active_units"], *spread(model, test),
                            spread(model, test, prior="standard")[1])
    name, units, diversity, flat, _ = runs["auto"]
    # of 20 units; measured 20 active, diversity 0.92, no flat samples
    assert name == "gaussian" and units >= 18 and diversity >= 0.7 and flat == 0
    _, units, diversity, flat, _ = runs["bernoulli"]  # the old default
    assert units <= 8 and diversity < 0.3  # measured 6 and 0.25: collapsed
    # Its density unbounded at black pixels, the continuous Bernoulli draws some flat grey
    # squares from N(0, I) (measured 99 of 2,000), which is why "auto" never picks it; codes
    # from its fitted prior, where the training codes are, draw none.
    assert runs["continuous-bernoulli"][4] > 20 and runs["continuous-bernoulli"][3] == 0

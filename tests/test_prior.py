"""The fitted prior: a Gaussian for each class's training codes, which `sample` draws from."""

import inspect
import json

import pytest
import torch
from refusals import assert_refused

from cvae import ConditionalVAE, Trainer
from cvae.conditions import Conditions
from cvae.models._prior import FittedPrior


def codes(n, dim, shift, seed):
    """Posterior moments of `n` images: means around `shift`, log-variances around -2."""
    g = torch.Generator().manual_seed(seed)
    mu = shift + torch.randn(n, dim, generator=g) @ torch.randn(dim, dim, generator=g)
    return mu, -2 + 0.1 * torch.randn(n, dim, generator=g)


def test_each_class_gets_the_moments_of_its_aggregate_posterior():
    dim, n = 3, 400
    (mu0, lv0), (mu1, lv1) = codes(n, dim, 5.0, 0), codes(n, dim, -5.0, 1)
    prior = FittedPrior(2, dim)
    batches = [(mu0[:150], lv0[:150], torch.zeros(150, dtype=torch.long)),
               (torch.cat([mu0[150:], mu1]), torch.cat([lv0[150:], lv1]),
                torch.cat([torch.zeros(n - 150, dtype=torch.long), torch.ones(n, dtype=torch.long)]))]
    prior.fit(batches)
    for c, (mu, lv) in enumerate(((mu0, lv0), (mu1, lv1))):
        own = torch.cov(mu.T, correction=0) + torch.diag(lv.exp().mean(0))
        pooled_mu, pooled_lv = torch.cat([mu0, mu1]), torch.cat([lv0, lv1])
        pooled = torch.cov(pooled_mu.T, correction=0) + torch.diag(pooled_lv.exp().mean(0))
        expected = (n * own + dim * pooled) / (n + dim)  # shrunk with the weight of `dim` images
        cov = prior.scale_tril[c] @ prior.scale_tril[c].T
        torch.testing.assert_close(prior.mean[c], mu.mean(0), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cov, expected, rtol=1e-4, atol=1e-4)
    assert prior.count.tolist() == [n, n]


def test_a_class_without_images_takes_the_pooled_gaussian_and_is_never_picked_when_unset():
    mu, lv = codes(50, 2, 3.0, 0)
    prior = FittedPrior(3, 2)
    prior.fit([(mu, lv, torch.full((50,), 1))])
    torch.testing.assert_close(prior.mean[0], mu.mean(0).float())
    torch.testing.assert_close(prior.mean[2], prior.mean[1])
    unset = torch.full((200,), -1)
    z = prior.draw(unset, torch.zeros(200, 2), torch.rand(200))
    assert torch.allclose(z, prior.mean[1].expand(200, 2))  # only the class that has images


def test_unlabelled_codes_are_left_out_and_none_at_all_is_refused():
    mu, lv = codes(10, 2, 0.0, 0)
    prior = FittedPrior(2, 2)
    model = ConditionalVAE((1, 6, 6), 2, latent_dim=2, backbone_kwargs={"hidden_dims": [8]},
                           condition_dropout=0.1)
    with pytest.raises(ValueError) as refused:
        model.fit_prior([(torch.rand(10, 1, 6, 6), torch.full((10,), -1))])
    assert_refused("fit-prior-unlabelled", refused.value)
    # The model is as it was: no fitted tensors beside a config that says "standard".
    assert model.fitted_prior is None and model.config["prior"] == "standard" and model.training
    prior.fit([(mu, lv, torch.tensor([0] * 5 + [-1] * 5))])
    assert prior.count.tolist() == [5, 0]


def test_sample_draws_from_the_fitted_gaussian_of_the_class_asked(tiny_model):
    x = torch.rand(40, 3, 8, 6)
    y = torch.arange(40) % 5
    before = tiny_model.sample(3, 2, temperature=0, mixed_precision=False)
    tiny_model.fit_prior([(x[:25], y[:25]), (x[25:], y[25:])])
    mean = tiny_model.fitted_prior.mean
    assert tiny_model.config["prior"] == "fitted"
    # At temperature 0 a fitted prior draws its class's mean code; the standard one draws 0.
    def draw(**prior):
        return tiny_model.sample(3, 2, temperature=0, mixed_precision=False, **prior)

    torch.testing.assert_close(draw(), tiny_model.decode(mean[[3, 3]], torch.tensor([3, 3])))
    torch.testing.assert_close(draw(prior="standard"), before)
    assert not torch.allclose(draw(), before)
    # The codes' spread is the fitted covariance, scaled by the temperature.
    g = torch.Generator().manual_seed(0)
    z = tiny_model._fitted_codes(torch.full((20000,), 2), 0.5 * torch.randn(20000, 4, generator=g), g)
    cov = tiny_model.fitted_prior.scale_tril[2] @ tiny_model.fitted_prior.scale_tril[2].T
    torch.testing.assert_close(torch.cov(z.T), 0.25 * cov, rtol=0.1, atol=0.01)


def test_a_model_with_a_standard_prior_has_no_fitted_tensors_and_refuses_to_draw_from_one(tiny_model):
    assert tiny_model.config["prior"] == "standard"
    assert not any(k.startswith("fitted_prior") for k in tiny_model.state_dict())
    for case, call in (("sample-prior-unfitted", lambda: tiny_model.sample(0, 1, prior="fitted")),
                       ("sample-prior-value", lambda: tiny_model.sample(0, 1, prior="learned")),
                       ("prior-value", lambda: ConditionalVAE(prior="vamp"))):
        with pytest.raises(ValueError) as refused:
            call()
        assert_refused(case, refused.value)


def test_no_condition_can_be_named_like_an_argument_of_sample():
    for argument in inspect.signature(ConditionalVAE.sample).parameters:
        if argument != "conditions":  # **conditions: the parts themselves
            with pytest.raises(ValueError, match="sample's arguments"):
                Conditions([{"name": argument, "kind": "continuous"}])


def test_from_data_models_fit_their_prior_when_training_ends_and_keep_it_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=g), torch.arange(64) % 4
    torch.manual_seed(0)
    model = ConditionalVAE.from_data((x, y), latent_dim=3)
    assert model.config["prior"] == "fitted" and not model.fitted_prior.fitted
    Trainer(model, (x, y), epochs=2, batch_size=16, verbose=False, progress=False).train()
    assert model.fitted_prior.count.tolist() == [16, 16, 16, 16]
    mu, _ = model.encode(x[y == 1], y[y == 1])
    torch.testing.assert_close(model.fitted_prior.mean[1], mu.mean(0).detach())
    model.save_pretrained("m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["prior"] == "fitted"
    loaded = ConditionalVAE.from_pretrained("m")
    torch.testing.assert_close(loaded.fitted_prior.scale_tril, model.fitted_prior.scale_tril)
    draw = [m.sample(2, 3, generator=torch.Generator().manual_seed(1)) for m in (model, loaded)]
    torch.testing.assert_close(draw[0], draw[1])


def test_the_tutorial_model_trains_as_before_with_the_standard_prior(mnist_small):
    torch.manual_seed(0)
    model = ConditionalVAE()
    Trainer(model, mnist_small, epochs=1, verbose=False, progress=False).train()
    assert model.fitted_prior is None and model.config["prior"] == "standard"


def test_unset_labels_draw_a_class_in_proportion_to_its_training_images():
    torch.manual_seed(0)
    model = ConditionalVAE((1, 6, 6), 3, latent_dim=2, backbone_kwargs={"hidden_dims": [8]},
                           condition_dropout=0.1)
    x = torch.rand(40, 1, 6, 6)
    y = torch.tensor([0] * 30 + [2] * 10)
    model.fit_prior([(x, y)])
    z = model._fitted_codes(torch.full((4000,), -1), torch.zeros(4000, 2), torch.Generator().manual_seed(0))
    share = (z == model.fitted_prior.mean[0]).all(1).float().mean().item()
    assert abs(share - 0.75) < 0.03
    assert ((z == model.fitted_prior.mean[2]).all(1).float().mean().item()) == pytest.approx(1 - share)
    assert model.sample(None, 5).shape == (5, 1, 6, 6)


def test_a_model_with_several_conditions_fits_one_gaussian_for_all_codes():
    torch.manual_seed(0)
    model = ConditionalVAE((1, 6, 6), latent_dim=2, backbone_kwargs={"hidden_dims": [8]}, conditions=[
        {"name": "digit", "kind": "categorical", "num_classes": 2},
        {"name": "size", "kind": "continuous", "mean": 0.0, "std": 1.0, "low": -2.0, "high": 2.0}])
    x = torch.rand(20, 1, 6, 6)
    table = torch.stack([torch.arange(20.0) % 2, torch.linspace(-1, 1, 20)], 1)
    model.fit_prior([(x, table)])
    assert model.fitted_prior.count.tolist() == [20]
    mu, _ = model.encode(x, table)
    torch.testing.assert_close(model.fitted_prior.mean[0], mu.mean(0).detach())
    assert model.sample(n=2, digit=1, size=0.5).shape == (2, 1, 6, 6)

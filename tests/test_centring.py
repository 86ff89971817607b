"""`centre_codes=`: the part of the code that a linear function of the condition predicts, taken out."""

import pytest
import torch
from refusals import assert_refused
from test_conditions import PARTS, SMALL, model, tensor_data

from cvae import ConditionalVAE, Trainer
from cvae.evaluation import latent_leakage
from cvae.models._centring import CodeShift


def twins(**settings):
    """A model with several conditions and the same one centred, its shift not yet fitted."""
    plain = model(condition_dropout=0.0, **settings)
    centred = model(condition_dropout=0.0, centre_codes=True, **settings)
    centred.load_state_dict(plain.state_dict(), strict=False)
    return plain.eval(), centred.eval()


def test_centred_codes_draw_the_same_images_and_carry_no_linear_trace_of_the_conditions():
    data = tensor_data(300)
    plain, centred = twins()
    before_fit = centred.encoder.mu.weight.clone()
    rows = plain.condition_rows(data.labels)
    mu_plain, _ = plain.encode(data.images, data.labels)
    centred.centre_codes([(data.images[:150], data.labels[:150]), (data.images[150:], data.labels[150:])])
    mu, _ = centred.encode(data.images, data.labels)
    assert not torch.allclose(mu, mu_plain, atol=1e-3)  # the shift moved the codes
    # The same images from each image's code: the decoder takes the shift back.
    assert torch.allclose(centred.decode(mu, data.labels), plain.decode(mu_plain, data.labels), atol=1e-5)
    # Centred: mean 0, and no linear relation to any column of the rows, on the codes fitted to.
    design = torch.cat([rows, torch.ones(len(rows), 1)], 1).double()
    fitted = design @ torch.linalg.lstsq(design, mu.double()).solution
    assert mu.mean(0).abs().max() < 1e-4 and fitted.abs().max() < 1e-4
    before = design @ torch.linalg.lstsq(design, mu_plain.double()).solution
    assert before.abs().max() > 1e-2  # the uncentred codes had a trace to take out
    # and the KL term's mean-square part only falls
    assert mu.pow(2).sum() < mu_plain.pow(2).sum()
    assert torch.equal(centred.encoder.mu.weight, before_fit)  # the networks are untouched
    # The loss: the same reconstruction from the same noise, a smaller KL term.
    noise = torch.randn(len(mu), centred.latent_dim, generator=torch.Generator().manual_seed(2))
    new, old = (m.loss(data.images, data.labels, noise=noise, reduction="none") for m in (centred, plain))
    assert torch.allclose(new.reconstruction, old.reconstruction, rtol=1e-4)
    assert new.kl.sum() < old.kl.sum()


def test_fitting_again_replaces_the_shift_and_an_unset_part_shifts_as_its_average():
    data = tensor_data(200)
    _, centred = twins()
    batches = [(data.images, data.labels)]
    centred.centre_codes(batches)
    first = {k: v.clone() for k, v in centred.code_shift.state_dict().items()}
    centred.centre_codes(batches)  # the codes are centred already: the same shift again
    for key, value in centred.code_shift.state_dict().items():
        assert torch.allclose(value, first[key], atol=1e-5), key
    shift = centred.code_shift
    rows = centred.condition_rows(data.labels)
    thickness = slice(3, 5)  # digit: 3 one-hot columns; thickness: value and known flag
    unset = rows.clone()
    unset[:, thickness] = 0
    average = rows.clone()
    average[:, thickness] = torch.tensor([shift.row_mean[3].item(), 1.0])
    assert torch.allclose(shift(unset), shift(average), atol=1e-5)
    assert not torch.allclose(shift(unset), shift(rows), atol=1e-3)


def test_guidance_decodes_both_branches_at_the_asked_conditions_code():
    data = tensor_data(200)
    m = model(centre_codes=True)  # with condition dropout: guidance applies
    m.eval()
    m.centre_codes([(data.images, data.labels)])
    asked = {"digit": [0, 2], "thickness": [1.5, 2.5]}  # tags unset: their columns 0
    images = m.sample(n=3, guidance=2.0, prior="standard", generator=torch.Generator().manual_seed(4),
                      mixed_precision=False, **asked)
    z = torch.randn(6, m.latent_dim, generator=torch.Generator().manual_seed(4))
    rows = m.condition_rows(m._condition_input(None, asked)).repeat_interleave(3, 0)
    raw = z + m.code_shift(rows)
    conditional = m.decoder(raw, rows)
    unconditional = m.decoder(raw, torch.zeros_like(rows))
    expected = m.likelihood.mean(torch.lerp(unconditional, conditional, 3.0))
    assert torch.allclose(images, expected, atol=1e-5)


def test_a_centred_model_saves_and_loads_its_shift(tmp_path):
    data = tensor_data(120)
    _, centred = twins()
    centred.centre_codes([(data.images, data.labels)])
    centred.save_pretrained(tmp_path / "m")
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert loaded.config["centre_codes"] is True
    assert torch.equal(loaded.code_shift.weight, centred.code_shift.weight)
    a, _ = loaded.encode(data.images, data.labels)
    b, _ = centred.encode(data.images, data.labels)
    assert torch.allclose(a, b)


@pytest.mark.parametrize(("case", "settings"), [
    ("centre-codes-value", {"centre_codes": "yes"}),
    ("centre-codes-one-label", {"centre_codes": True, "conditions": None, "num_classes": 3}),
])
def test_bad_centring_settings_are_refused(case, settings):
    with pytest.raises(ValueError) as refused:
        ConditionalVAE(**{**SMALL, "conditions": PARTS, **settings})
    assert_refused(case, refused.value)


def test_centring_a_model_built_without_it_is_refused_and_leaves_it_as_it_was():
    data = tensor_data(20)
    plain, _ = twins()
    before = plain.state_dict()
    with pytest.raises(ValueError) as refused:
        plain.centre_codes([(data.images, data.labels)])
    assert_refused("centre-codes-not-built", refused.value)
    assert all(torch.equal(v, before[k]) for k, v in plain.state_dict().items())


def test_from_data_centres_several_conditions_and_the_trainer_fits_the_shift_at_the_end():
    data, test = tensor_data(300), tensor_data(300, seed=1)
    torch.manual_seed(0)
    m = ConditionalVAE.from_data(data, **SMALL)
    assert m.config["centre_codes"] is True and not m.code_shift.weight.any()
    Trainer(m, data, epochs=3, seed=0, verbose=False, progress=False).train()
    assert m.code_shift.weight.any()
    mu, _ = m.encode(data.images, data.labels)
    assert mu.mean(0).abs().max() < 1e-3
    # the prior is fitted to the centred codes
    assert torch.allclose(m.fitted_prior.mean[0], mu.double().mean(0).to(m.fitted_prior.mean), atol=1e-3)
    plain = ConditionalVAE.from_config({**m.config, "centre_codes": False})
    plain.load_state_dict(m.state_dict(), strict=False)
    centred, uncentred = latent_leakage(m, data, test)["digit"], latent_leakage(plain, data, test)["digit"]
    assert uncentred["accuracy"] > uncentred["chance"] + 0.2  # the same weights' codes leak
    assert centred["accuracy"] < centred["chance"] + 0.05
    one_label = (data.images, data.labels[:, 0].long())
    assert ConditionalVAE.from_data(one_label, **SMALL).code_shift is None


def test_a_shift_of_no_condition_is_zero_until_fitted():
    shift = CodeShift(model().conditions, 4)
    assert not shift(torch.rand(5, model().conditions.width)).any()


def test_the_card_of_a_centred_model_says_so():
    from cvae.hub._card import make_model_card

    assert "codes centred on their conditions" in make_model_card(model(centre_codes=True), name="m")
    assert "codes centred" not in make_model_card(model(), name="m")

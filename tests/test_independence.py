"""`independence=`: a penalty on the latent code's correlation with the conditions."""

import pytest
import torch

import cvae
from cvae import ConditionalVAE, Trainer
from cvae.evaluation import latent_leakage
from cvae.models._independence import decorrelation


def test_decorrelation_counts_each_units_squared_correlation_with_each_column():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(4000, 2, generator=g)
    free = torch.randn(4000, 3, generator=g)
    assert decorrelation(free, rows) < 0.01
    # a unit that is a column, scaled (so that shrinking a unit cannot hide it), and one half of one
    leaky = torch.stack([0.01 * rows[:, 0], rows[:, 1] + torch.randn(4000, generator=g), free[:, 0]], 1)
    assert decorrelation(leaky, rows).item() == pytest.approx(1 + 0.5, abs=0.03)
    constant = torch.cat([rows, torch.ones(4000, 1)], 1)  # a column the batch does not vary: 0
    assert decorrelation(leaky, constant).item() == pytest.approx(decorrelation(leaky, rows).item(), abs=1e-4)


def test_the_penalty_is_added_in_training_only_and_the_terms_stay_the_elbos():
    from test_conditions import model, tensor_data

    data = tensor_data(16)
    m = model(condition_dropout=0.0, independence=3.0)
    noise = torch.randn(16, m.latent_dim, generator=torch.Generator().manual_seed(1))
    m.train()
    trained = m.loss(data.images, data.labels, noise=noise)
    m.eval()
    plain = m.loss(data.images, data.labels, noise=noise)
    mu, _ = m.encode(data.images, data.labels)
    penalty = 3.0 * 16 * decorrelation(mu, m.condition_rows(data.labels))
    assert penalty > 0 and torch.allclose(trained.loss, plain.loss + penalty, rtol=1e-5)
    assert torch.allclose(trained.reconstruction, plain.reconstruction)
    assert torch.allclose(trained.kl, plain.kl)


@pytest.mark.slow  # two small models, 40 epochs each
def test_the_penalty_keeps_a_leaky_models_code_free_of_its_condition():
    """Dropped from the encoder too (`unset="free"`, half the images), a part moves into the
    code; the penalty keeps it out: a linear probe reads it far less often."""
    from test_conditions import SMALL, tensor_data

    data, test = tensor_data(600), tensor_data(600, seed=1)
    read = {}
    for weight in (0.0, 5.0):
        torch.manual_seed(0)
        # Not centred: the penalty alone is what this measures (centring takes out what it leaves).
        m = ConditionalVAE.from_data(data, **SMALL, unset="free", condition_dropout=0.5, independence=weight,
                                     centre_codes=False)
        Trainer(m, data, epochs=40, seed=0, verbose=False).train()
        read[weight] = latent_leakage(m, data, test)["digit"]
    assert read[0.0]["accuracy"] > 0.6 and read[5.0]["accuracy"] < read[0.0]["accuracy"] - 0.2


def test_from_data_keeps_several_conditions_out_of_the_code_and_leaves_one_label_alone():
    from test_conditions import SMALL, tensor_data

    assert ConditionalVAE.from_data(tensor_data(), **SMALL).independence == 1.0
    labelled = cvae.LabelledImages(torch.rand(20, 1, 8, 8), torch.arange(20) % 2)
    one = ConditionalVAE.from_data(labelled, **SMALL)
    assert one.independence == 0.0 and ConditionalVAE().independence == 0.0


@pytest.mark.parametrize(("case", "settings"), [("independence-value", {"independence": -1}),
                                                ("independence-semi", {"independence": 1.0,
                                                                       "semi_supervised": True})])
def test_a_bad_independence_is_refused(case, settings):
    from refusals import assert_refused

    with pytest.raises(ValueError) as error:
        ConditionalVAE(**settings)
    assert_refused(case, error.value)

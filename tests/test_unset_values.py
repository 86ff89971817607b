"""`unset="data"`: the parts a call leaves unset take the values of training images near the set ones."""

import math

import pytest
import torch

from cvae import ConditionalVAE, Trainer
from cvae.conditions import Conditions
from cvae.models._unset_values import KEPT_ROWS, UnsetValues

NAN = math.nan
CONDITIONS = Conditions([
    {"name": "digit", "kind": "categorical", "num_classes": 3},
    {"name": "size", "kind": "continuous", "mean": 10.0, "std": 8.0, "low": -5.0, "high": 25.0},
    {"name": "tags", "kind": "multi-label", "tags": ["red", "round"]},
])


def training_table(seed=0):
    """Class 0 and 1: 500 rows each, size 10 * class + N(0, 1); class 2: 3 rows, size 20, 21, 22.

    Tags: class 0 always red, class 1 never; ten rows of class 0 lack a size.
    """
    g = torch.Generator().manual_seed(seed)
    digit = torch.cat([torch.zeros(500), torch.ones(500), torch.full((3,), 2.0)])
    size = torch.cat([10 * digit[:1000] + torch.randn(1000, generator=g), torch.tensor([20.0, 21.0, 22.0])])
    size[:10] = NAN
    red = (digit == 0).float()
    round_ = torch.randint(0, 2, (1003,), generator=g).float()
    return torch.stack([digit, size, red, round_], 1)


def fitted(table):
    values = UnsetValues(CONDITIONS.table_width)
    values.fit(table)
    return values


def asked(row, n=2000):
    return torch.tensor([row]).repeat(n, 1)


def test_an_unset_part_takes_the_values_of_training_rows_of_the_class_asked():
    table = training_table()
    filled = fitted(table).fill(asked([0.0, NAN, NAN, NAN]), CONDITIONS, torch.Generator().manual_seed(1))
    assert not torch.isnan(filled).any() and (filled[:, 0] == 0).all() and (filled[:, 2] == 1).all()
    own = table[(table[:, 0] == 0) & ~torch.isnan(table[:, 1]), 1]
    assert filled[:, 1].mean() == pytest.approx(own.mean().item(), abs=0.1)
    assert filled[:, 1].std() == pytest.approx(own.std().item(), rel=0.1)
    # each filled row is a training row of the class, whole: the size and the tags together
    rows = {tuple(r) for r in table[table[:, 0] == 0].tolist()}
    assert all(tuple(r) in rows for r in filled.tolist())
    # a class of three rows draws from those three only, each about as often
    few = fitted(table).fill(asked([2.0, NAN, NAN, NAN], 900), CONDITIONS, torch.Generator().manual_seed(2))
    assert sorted(few[:, 1].unique().tolist()) == [20.0, 21.0, 22.0]
    assert torch.bincount(few[:, 1].long() - 20).min() > 250


def test_a_set_continuous_value_draws_the_rows_nearest_it():
    table = training_table()
    filled = fitted(table).fill(asked([NAN, 9.5, NAN, NAN]), CONDITIONS, torch.Generator().manual_seed(0))
    assert (filled[:, 0] == 1).all() and (filled[:, 1] == 9.5).all() and (filled[:, 2] == 0).all()
    high = fitted(table).fill(asked([NAN, 40.0, NAN, NAN], 10), CONDITIONS)
    assert (high[:, 0] == 2).all()  # beyond the training range: the nearest rows still


def test_rows_asked_whole_are_left_as_they_are_and_an_unfitted_model_fills_nothing():
    whole = torch.tensor([[1.0, 3.0, 0.0, 1.0], [0.0, -2.0, 1.0, 1.0]])
    assert torch.equal(fitted(training_table()).fill(whole, CONDITIONS), whole)
    holed = asked([0.0, NAN, NAN, NAN], 3)
    assert torch.equal(UnsetValues(4).fill(holed, CONDITIONS).isnan(), holed.isnan())


def test_many_training_rows_keep_a_random_few_thousand():
    table = training_table().repeat(5, 1)
    values = fitted(table)
    assert int(values.count) == KEPT_ROWS < len(table)
    kept = values.table[values.known[:, 1] > 0]
    assert set(kept[:, 0].tolist()) == {0.0, 1.0, 2.0}  # drawn from the whole table, not its head
    with pytest.raises(ValueError, match=r"a table \(N, 4\)"):
        values.fit(torch.zeros(0, 4))


@pytest.fixture(scope="module")
def learned():
    """The brightness of the images' right half shows `thickness` (`tensor_data`); 30 epochs."""
    from test_conditions import SMALL, tensor_data

    data = tensor_data(600)
    model = ConditionalVAE.from_data(data, **SMALL)
    Trainer(model, data, epochs=30, seed=0, verbose=False).train()
    return model, data


def test_from_data_fills_unset_parts_from_the_data_and_they_spread_as_the_data_do(learned, tmp_path):
    model, data = learned
    assert model.unset == "data" and model.unset_values.fitted
    # One code (temperature 0): all the spread is the thickness's. Left unset, it is drawn
    # from the training rows of the parts that are set, and spreads as when each of those
    # rows' thickness is asked for (measured 0.98; against every row's, 0.91).
    g = torch.Generator().manual_seed(0)
    unset = model.sample(n=500, digit=0, tags=[], temperature=0.0, generator=g)
    rows = (data.labels[:, 0] == 0) & (data.labels[:, 2:].sum(1) == 0)  # digit 0, no tags
    asked_ = model.sample(n=1, digit=0, tags=[], thickness=data.labels[rows, 1].tolist(), temperature=0.0)
    spread = [images[:, 0, :, 4:].mean((1, 2)).std() for images in (unset, asked_)]
    assert spread[0] / spread[1] == pytest.approx(1.0, abs=0.05)
    model.save_pretrained(tmp_path / "m")
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(loaded.sample(n=3, digit=1, generator=g()), model.sample(n=3, digit=1, generator=g()))


def test_the_model_learns_a_continuous_part(learned):
    """Asked and decoded brightness agree."""
    model, _ = learned
    asked_ = torch.linspace(1.1, 2.9, 10)
    images = model.sample(n=1, digit=0, thickness=asked_.tolist(), tags=[], temperature=0.0)
    brightness = images[:, 0, :, 4:].mean((1, 2))
    assert torch.corrcoef(torch.stack([asked_, brightness]))[0, 1] > 0.95


def test_data_is_for_several_conditions():
    with pytest.raises(ValueError) as error:
        ConditionalVAE(condition_dropout=0.1, unset="data")
    from refusals import assert_refused

    assert_refused("unset-data-one-label", error.value)


@pytest.mark.parametrize("unset", ["data", "free"])
def test_data_trains_as_average_a_dropped_part_reaches_the_decoder_alone(unset):
    from test_conditions import model, tensor_data

    data = tensor_data(6)
    m = model(condition_dropout=0.5, unset=unset).train()
    noise = torch.cat([torch.randn(6, m.latent_dim), torch.full((6, 3), -5.0)], 1)  # every part dropped
    m.loss(data.images, data.labels, noise=noise).reconstruction.backward()
    reached = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in m.encoder.parameters())
    assert reached == (unset == "free")


def test_unset_spread_compares_rows_drawn_at_random_not_the_first(learned):
    """Test rows sorted by thickness: the first 100 would spread a sixth as widely as all."""
    from cvae.evaluation import unset_spread

    model, data = learned
    ordered = data.select(data.labels[:, 1].argsort())

    def brightness(images):
        return {"thickness": 1 + 2 * images[:, 0, :, 4:].mean((1, 2))}

    assert 0.7 < unset_spread(model, ordered, brightness, "thickness", n=100, temperature=0.0) < 1.4


def test_a_strip_fills_a_part_neither_end_names_with_one_training_value(learned):
    """The thickness unset: one value for the whole strip, a different training value per draw."""
    model, data = learned
    z = torch.zeros(model.latent_dim)
    strips = [model.interpolate_classes({"digit": 0, "tags": []}, {"digit": 0}, steps=3, z=z,
                                        generator=torch.Generator().manual_seed(seed)) for seed in range(40)]
    assert all(torch.equal(strip[0], strip[-1]) for strip in strips)  # one value along the strip
    drawn = torch.stack([strip[0, 0, :, 4:].mean() for strip in strips])
    asked_ = model.sample(n=1, digit=0, tags=[], thickness=data.labels[:40, 1].tolist(), temperature=0.0)
    assert drawn.std() / asked_[:, 0, :, 4:].mean((1, 2)).std() > 0.5  # the data's spread, not one average

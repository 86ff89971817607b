"""Several conditions: the schema, tables of values, models, data with metadata, and the command."""

import csv
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from refusals import assert_refused

import cvae
from cvae import ConditionalVAE, Trainer
from cvae.cli import main
from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel
from cvae.evaluation import condition_fidelity, latent_leakage, unset_spread

PARTS = [
    {"name": "digit", "kind": "categorical", "num_classes": 3, "class_names": ["a", "b", "c"]},
    {"name": "thickness", "kind": "continuous", "mean": 2.0, "std": 0.5, "low": 1.0, "high": 3.0},
    {"name": "tags", "kind": "multi-label", "tags": ["red", "round"]},
]
SMALL = {"image_shape": (1, 8, 8), "latent_dim": 4, "backbone_kwargs": {"hidden_dims": [32]}}


def model(**settings):
    torch.manual_seed(0)
    return ConditionalVAE(**{**SMALL, "conditions": PARTS, **settings})


def tensor_data(n=120, seed=0):
    """Images whose left half's brightness shows `digit`, and right half's `thickness`."""
    g = torch.Generator().manual_seed(seed)
    digit = torch.randint(0, 3, (n,), generator=g)
    thickness = 1 + 2 * torch.rand(n, generator=g)
    images = torch.zeros(n, 1, 8, 8)
    images[:, :, :, :4] = (digit / 2)[:, None, None, None]
    images[:, :, :, 4:] = ((thickness - 1) / 2)[:, None, None, None]
    tags = torch.randint(0, 2, (n, 2), generator=g)
    return cvae.LabelledImages(
        images,
        {"digit": digit, "thickness": thickness, "tags": tags},
        conditions=PARTS[:1] + [{"name": "thickness", "kind": "continuous"}] + PARTS[2:],
    )


def test_the_schema_round_trips_through_json_and_shows_each_part():
    schema = Conditions(PARTS)
    assert (
        Conditions(schema.to_json()) == schema
        and Conditions(json.loads(json.dumps(schema.to_json()))) == schema
    )
    assert schema.width == 3 + 2 + 3 and schema.table_width == 1 + 1 + 2
    assert [type(p) for p in schema] == [Categorical, Continuous, MultiLabel]
    shown = repr(schema)
    assert "digit" in shown and "trained on 1 to 3" in shown and "'red', 'round'" in shown
    rows = schema.rows(torch.tensor([[2.0, 3.0, 1.0, 0.0], [math.nan] * 4]))
    assert rows[0].tolist() == [
        0,
        0,
        1,
        2.0,
        1,
        1,
        0,
        1,
    ]  # one-hot c, (3 - 2) / 0.5 and known, tags and known
    assert rows[1].tolist() == [0.0] * 8  # unset: zeros in every column


def test_a_one_label_model_is_the_special_case_and_keeps_its_config():
    plain = ConditionalVAE()
    assert plain.conditions.is_single and plain.conditions.names == ["label"]
    assert plain.config["conditions"] is None and plain.noise_dim == 20
    assert "conditions" not in json.loads(
        open(cvae.hub._layout.BUNDLED_DIR / "mnist-mlp" / "config.json").read()
    )
    assert ConditionalVAE.from_pretrained("mnist-mlp").sample(7, 2).shape == (2, 1, 28, 28)


def test_dropping_one_part_is_bit_for_bit_the_one_label_dropout():
    """One part's coins are the noise column after the code's, as before conditions had names."""
    from cvae.models._guidance import drop_conditions

    rows = torch.eye(10)[torch.arange(8) % 10]
    noise = torch.randn(8, 21, generator=torch.Generator().manual_seed(1))
    dropped, rest = drop_conditions(rows, 0.3, noise, 20, None, torch.zeros(10, dtype=torch.long), 1)
    kept = noise[:, 20] >= torch.special.ndtri(torch.tensor(0.3))
    assert torch.equal(dropped, rows * kept[:, None].float()) and torch.equal(rest, noise[:, :20])


def test_each_part_is_dropped_on_its_own_coin():
    m = model(condition_dropout=0.5).train()
    assert m.noise_dim == 4 + 3
    table = torch.tensor([[1.0, 2.5, 1.0, 1.0]]).repeat(400, 1)
    rows = m.condition_rows(table)
    from cvae.models._guidance import drop_conditions

    noise = torch.randn(400, m.noise_dim, generator=torch.Generator().manual_seed(0))
    dropped, _ = drop_conditions(rows, 0.5, noise, 4, None, m._row_parts, 3)
    for i, cols in enumerate([slice(0, 3), slice(3, 5), slice(5, 8)]):
        gone = (dropped[:, cols] == 0).all(1)
        assert torch.equal(gone, noise[:, 4 + i] < 0)  # the part's own coin, and only it
        assert torch.equal(dropped[~gone, cols], rows[~gone, cols])


def test_sampling_by_name_broadcasts_and_warns_outside_the_training_range():
    m = model()
    assert m.sample(n=3, digit="b", thickness=2.0, tags=["red"]).shape == (3, 1, 8, 8)
    assert m.sample(n=2, digit=[0, 1, 2], thickness=2.0, tags=[]).shape == (6, 1, 8, 8)
    assert m.sample({"digit": 1, "thickness": 2.5, "tags": ["round"]}, 1).shape == (1, 1, 8, 8)
    with pytest.warns(UserWarning, match="outside the range the model was trained on, 1 to 3"):
        m.sample(n=1, digit=0, thickness=9.0, tags=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.sample(n=1, digit=0, thickness=3.0, tags=[])  # the range's end is inside it


def test_the_same_codes_and_conditions_give_the_same_images_by_name_or_table():
    m = model()
    g = torch.Generator().manual_seed(3)
    by_name = m.sample(n=2, digit="c", thickness=1.5, tags=["red", "round"], generator=g)
    table = torch.tensor([[2.0, 1.5, 1.0, 1.0]])
    assert torch.equal(by_name, m.sample(table, 2, generator=torch.Generator().manual_seed(3)))


def test_leaving_a_part_unset_needs_condition_dropout():
    with pytest.raises(ValueError, match="tags left out"):
        model(condition_dropout=0.0).sample(n=1, digit=0, thickness=2.0)
    unset = model().sample(n=2, digit=0, generator=torch.Generator().manual_seed(0))
    rows = model().condition_rows(torch.tensor([[0.0, math.nan, math.nan, math.nan]]))
    assert rows[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0] and unset.shape == (2, 1, 8, 8)


def test_a_trained_model_takes_its_statistics_from_the_data_and_saves_them(tmp_path):
    data = tensor_data()
    m = ConditionalVAE.from_data(data, **SMALL)
    Trainer(m, data, epochs=1, seed=0, verbose=False).train()
    thickness = m.conditions["thickness"]
    values = data.labels[:, 1]
    assert thickness.mean == pytest.approx(values.double().mean().item())
    assert (thickness.low, thickness.high) == (
        pytest.approx(values.min().item()),
        pytest.approx(values.max().item()),
    )
    m.save_pretrained(tmp_path / "m")
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert loaded.conditions == m.conditions and loaded.class_names == ["a", "b", "c"]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(
        loaded.sample(n=2, digit=1, thickness=2.0, tags=[], generator=g()),
        m.sample(n=2, digit=1, thickness=2.0, tags=[], generator=g()),
    )


def test_a_new_model_without_statistics_takes_the_training_datas():
    data = tensor_data()
    m = ConditionalVAE(**SMALL, conditions=[PARTS[0], {"name": "thickness", "kind": "continuous"}, PARTS[2]])
    assert not m.conditions.fitted
    Trainer(m, data, epochs=1, seed=0, verbose=False).train()
    assert m.conditions.fitted and m.config["conditions"][1]["mean"] == m.conditions["thickness"].mean


def test_missing_values_train_as_unset_parts():
    data = tensor_data()
    values = {
        "digit": data.labels[:, 0].long(),
        "thickness": data.labels[:, 1].clone(),
        "tags": data.labels[:, 2:].long(),
    }
    values["digit"][:10] = -1
    values["thickness"][10:20] = math.nan
    holed = cvae.LabelledImages(data.images, values, conditions=data.conditions)
    assert torch.isnan(holed.labels[:10, 0]).all() and torch.isnan(holed.labels[10:20, 1]).all()
    m = ConditionalVAE.from_data(holed, **SMALL)
    history = Trainer(m, holed, epochs=2, seed=0, verbose=False).train()
    assert all(math.isfinite(e["loss"]) for e in history)


def test_transfer_changes_only_the_parts_named():
    m = model()
    images = torch.rand(2, 1, 8, 8)
    own = {"digit": [0, 2], "thickness": [1.5, 2.5], "tags": [["red"], []]}
    out = m.transfer(images, own, to={"thickness": [1.0, 3.0]})
    assert out.shape == (2, 2, 1, 8, 8)
    mu, _ = m.encode(images, m._condition_input(own, {}))
    table = torch.tensor([[2.0, 3.0, 0.0, 0.0]])  # image 1 as it is, but thickness 3
    assert torch.allclose(out[1, 1], m.decode(mu[1:], table)[0], atol=1e-6)


def test_transfer_takes_classes_or_a_dict_for_one_label_too():
    m = ConditionalVAE(**SMALL)
    images = torch.rand(2, 1, 8, 8)
    by_name = m.transfer(images, [1, 2], to={"label": [3, 4]})
    assert torch.equal(m.transfer(images, [1, 2], to=[3, 4]), by_name)
    assert m.transfer(images, [1, 2]).shape == (2, 10, 1, 8, 8)
    no_class = ConditionalVAE(**SMALL, conditions=[PARTS[1], PARTS[2]])
    with pytest.raises(ValueError, match="no class to draw the images as"):
        no_class.transfer(images, {"thickness": [1.0, 2.0], "tags": [[], []]})


def test_interpolating_a_continuous_part_keeps_the_others():
    m = model()
    strip = m.interpolate_classes(
        {"digit": 1, "thickness": 1.0, "tags": []}, {"thickness": 3.0}, steps=3, z=torch.zeros(4)
    )
    ends = m.decode(torch.zeros(2, 4), torch.tensor([[1.0, 1.0, 0, 0], [1.0, 3.0, 0, 0]]))
    assert torch.allclose(strip[[0, 2]], ends, atol=1e-6)


def test_a_split_keeps_each_class_share_by_the_first_categorical_part():
    data = tensor_data(300)
    train, test = cvae.train_test_split(data, test_fraction=0.2, seed=0)
    assert test.conditions == data.conditions and len(train) + len(test) == 300
    for c in range(3):
        share = (test.labels[:, 0] == c).sum() / (data.labels[:, 0] == c).sum()
        assert abs(share.item() - 0.2) < 0.03


def write_folder(folder, rows, name="metadata.csv", images=None):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        if images is None or row["file_name"] in images:
            Image.new("L", (8, 8), color=20 * i).save(folder / row["file_name"])
    if name.endswith(".csv"):
        with open(folder / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


ROWS = [
    {
        "file_name": f"{i}.png",
        "shape": ["ring", "box"][i % 2],
        "size": f"{1 + i / 4:.2f}",
        "digit": str(i % 3),
    }
    for i in range(12)
]


def test_a_metadata_file_gives_each_image_its_conditions_with_kinds_inferred(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[3]["size"] = ""  # a blank cell: missing
    data = cvae.data.load_image_folder(write_folder(tmp_path / "f", rows))
    assert [(p.name, p.kind) for p in data.conditions] == [
        ("shape", "categorical"),
        ("size", "continuous"),
        ("digit", "categorical"),
    ]
    assert (
        data.conditions["shape"].class_names == ("box", "ring") and data.conditions["digit"].num_classes == 3
    )
    assert data.labels[0].tolist() == [1.0, 1.0, 0.0] and math.isnan(data.labels[3, 1])
    assert data.images[5, 0, 0, 0].item() == pytest.approx(100 / 255)  # row 5 is file 5.png
    chosen = cvae.data.load_image_folder(tmp_path / "f", conditions=["digit:continuous", "shape"])
    assert [(p.name, p.kind) for p in chosen.conditions] == [
        ("digit", "continuous"),
        ("shape", "categorical"),
    ]


def test_json_lines_give_lists_as_tags(tmp_path):
    rows = [{"file_name": f"{i}.png", "tags": [["a"], ["b", "a"], []][i % 3], "v": i / 2} for i in range(6)]
    data = cvae.data.load_image_folder(write_folder(tmp_path / "j", rows, "metadata.jsonl"))
    assert data.conditions["tags"] == MultiLabel("tags", ("a", "b"))
    assert data.labels[1].tolist() == [1.0, 1.0, 0.5] and data.labels[2].tolist() == [0.0, 0.0, 1.0]


def test_a_hugging_face_dataset_gives_several_columns_by_their_features():
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "digit": datasets.ClassLabel(names=["x", "y"]),
            "tags": datasets.Sequence(datasets.ClassLabel(names=["p", "q"])),
            "size": datasets.Value("float32"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "image": [Image.new("L", (8, 8), 10 * i) for i in range(6)],
            "digit": [0, 1, -1, 0, 1, 0],
            "tags": [[0], [1], [0, 1], [], [0], [1]],
            "size": [0.5, 1.0, None, 2.0, 2.5, 3.0],
        },
        features=features,
    )
    data = cvae.data.HFImages(ds, conditions=["digit", "tags", "size"])
    assert [p.kind for p in data.conditions] == ["categorical", "multi-label", "continuous"]
    assert data.conditions["tags"].tags == ("p", "q")
    assert (
        math.isnan(data.labels[2, 0])
        and math.isnan(data.labels[2, 3])
        and data.labels[2, 1:3].tolist() == [1, 1]
    )
    image, row = data[1]
    assert image.shape == (1, 8, 8) and row.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_the_measures_score_what_they_should():
    data = tensor_data(400)
    m = ConditionalVAE.from_data(data, **SMALL)
    Trainer(m, data, epochs=2, seed=0, verbose=False).train()

    def truth(images):  # what the images show, read back exactly
        return {
            "digit": (2 * images[:, 0, :, :4].mean((1, 2))).round().long(),
            "thickness": 1 + 2 * images[:, 0, :, 4:].mean((1, 2)),
        }

    real = condition_fidelity(m, data, truth, n=None, real=True)
    assert real["digit"]["recognised"] == 1.0 and real["thickness"]["r"] > 0.999
    assert real["thickness"]["mae"] < 0.01 and "tags" not in real

    def shuffled(images):
        read = truth(images)
        return {
            k: v[torch.randperm(len(v), generator=torch.Generator().manual_seed(0))] for k, v in read.items()
        }

    assert abs(condition_fidelity(m, data, shuffled, n=None, real=True)["thickness"]["r"]) < 0.2
    leak = latent_leakage(m, data, data, n=None)
    assert set(leak) == {"digit", "thickness", "tags"} and 0.3 < leak["digit"]["chance"] < 0.4
    assert set(leak["thickness"]) == {"r2"}
    assert unset_spread(m, data, truth, "thickness", n=None) >= 0


def test_the_command_samples_by_condition_and_names_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model().save_pretrained(tmp_path / "m")
    code = main(
        [
            "sample",
            "--model",
            str(tmp_path / "m"),
            "--condition",
            "digit=b",
            "--condition",
            "thickness=2.5",
            "--condition",
            "tags=red,round",
            "-n",
            "3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "3 images of digit=b, thickness=2.5, tags=red+round" in out
    assert (tmp_path / "samples-digit=b_thickness=2.5_tags=red-round.png").is_file()
    assert main(["sample", "--model", str(tmp_path / "m"), "--digit", "c", "-n", "2", "-o", "c.png"]) == 0
    assert "images of digit=c" in capsys.readouterr().out  # --digit is the first categorical part


def test_cvae_train_and_eval_read_a_metadata_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"file_name": f"{i}.png", "shape": ["ring", "box"][i % 2], "size": f"{1 + (i % 7) / 4:.2f}"}
        for i in range(40)
    ]
    folder = write_folder(tmp_path / "f", rows)
    assert (
        main(
            [
                "train",
                "--dataset",
                str(folder),
                "--conditions",
                "shape,size",
                "--epochs",
                "2",
                "--latent-dim",
                "4",
                "--independence",
                "0.5",
                "--no-centre-codes",
                "-o",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    card = (tmp_path / "run" / "README.md").read_text()
    assert "## Conditions" in card and "from the latent code" in card and "size left unset" in card
    assert [p["name"] for p in config["conditions"]] == ["shape", "size"] and config[
        "condition_dropout"
    ] == 0.1
    # from_data's choice; the options'
    assert (config["unset"], config["independence"], config["centre_codes"]) == ("data", 0.5, False)
    assert main(["eval", str(tmp_path / "run"), "-k", "2", "-o", str(tmp_path / "e.json")]) == 0, printed
    printed = capsys.readouterr().out
    assert "from the latent code" in printed and "size left unset" in printed
    result = json.loads((tmp_path / "e.json").read_text())["conditions"]
    assert set(result["samples"]) == {"shape", "size"} and "r2" in result["leakage"]["size"]
    assert "r2" in result["leakage_mlp"]["size"] and "(linear; MLP)" in printed


def metadata_case(tmp_path, case):
    rows = [dict(r) for r in ROWS]
    folder = tmp_path / case
    if case == "metadata-missing-image":
        write_folder(folder, rows, images={r["file_name"] for r in rows[:-1]})
    elif case == "metadata-unlisted-image":
        write_folder(folder, rows)
        from PIL import Image

        Image.new("L", (8, 8)).save(folder / "extra.png")
    elif case == "metadata-continuous-text":
        rows[4]["size"] = "big"
        write_folder(folder, rows)
        return lambda: cvae.data.load_image_folder(folder, conditions=["size:continuous"])
    elif case == "metadata-mixed-column":
        rows[4]["size"] = "big"
        write_folder(folder, rows)
    elif case == "metadata-no-file-name":
        write_folder(folder, [{"file": r["file_name"], **r} for r in rows])
        (folder / "metadata.csv").write_text(
            (folder / "metadata.csv").read_text().replace("file_name", "path")
        )
    elif case == "metadata-unknown-column":
        write_folder(folder, rows)
        return lambda: cvae.data.load_image_folder(folder, conditions=["shape", "colour"])
    return lambda: cvae.data.load_image_folder(folder)


REFUSED = {
    "condition-unknown": lambda: model().sample(n=1, digit=0, thickness=2.0, tags=[], colour=3),
    "condition-wrong-kind": lambda: model().sample(n=1, digit=0, thickness="thick", tags=[]),
    "condition-unknown-tag": lambda: model().sample(n=1, digit=0, thickness=2.0, tags=["blue"]),
    "condition-unknown-class": lambda: model().sample(n=1, digit="d", thickness=2.0, tags=[]),
    "condition-batch-lengths": lambda: model().sample(n=1, digit=[0, 1], thickness=[1.0, 2.0, 3.0], tags=[]),
    "condition-reserved-name": lambda: Conditions([{"name": "n", "kind": "continuous"}]),
    "condition-bad-kind": lambda: Conditions([{"name": "age", "kind": "ordinal"}]),
    "condition-data-mismatch": lambda: Trainer(ConditionalVAE(**SMALL), tensor_data(), epochs=1),
    "condition-table-value": lambda: cvae.LabelledImages(
        torch.zeros(2, 1, 8, 8), torch.tensor([[0.0, 1.0, 0.0, 1.0], [3.0, 1.0, 0.0, 1.0]]), conditions=PARTS
    ),
}
METADATA = [
    "metadata-missing-image",
    "metadata-unlisted-image",
    "metadata-continuous-text",
    "metadata-mixed-column",
    "metadata-no-file-name",
    "metadata-unknown-column",
]


@pytest.mark.parametrize("case", sorted(REFUSED) + METADATA)
def test_bad_conditions_are_refused_in_one_line_before_any_work(case, tmp_path):
    call = REFUSED[case] if case in REFUSED else metadata_case(tmp_path, case)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        call()
    assert_refused(case, err.value)


def test_the_command_refuses_an_unknown_condition_in_one_line(tmp_path, capsys):
    model().save_pretrained(tmp_path / "m")
    assert (
        main(
            [
                "sample",
                "--model",
                str(tmp_path / "m"),
                "--condition",
                "colour=red",
                "-o",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert_refused("cli-condition-unknown", f"exit 2: {err.strip()}")
    assert not (tmp_path / "x.png").exists()


def test_a_card_of_a_model_with_several_conditions_samples_by_name():
    from cvae.hub._card import make_model_card

    card = make_model_card(model(), name="m")
    assert 'model.sample(n=16, digit="a")' in card
    assert "conditioned on digit (categorical), thickness (continuous), tags (multi-label)" in card


def test_the_bundled_morpho_model_draws_what_its_card_says(mnist_test):
    """Digit by the bundled classifier, thickness and slant by the benchmark's morphometry,
    for 500 test images' conditions, at the model's own distribution (it recommends no other)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from morphometry import measure

    from cvae.evaluation import load_classifier

    m = ConditionalVAE.from_pretrained("mnist-morpho")
    assert m.conditions.names == ["digit", "thickness", "slant"] and m.sampling == {}
    assert m.config["centre_codes"] and m.code_shift.weight.any()  # its codes centred when trained
    images = mnist_test.images[:500]
    asked = {"digit": mnist_test.labels[:500], **measure(images)}
    samples = m.sample(asked, 1, generator=torch.Generator().manual_seed(0))
    got = measure(samples)
    assert (load_classifier().predict(samples) == asked["digit"]).float().mean() >= 0.99
    for part in ("thickness", "slant"):
        assert torch.corrcoef(torch.stack([asked[part], got[part]]))[0, 1] >= 0.88, part

"""`cvae.augment` and `cvae augment`: the set written, its datasheet, its refusals, and a kill."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from processes import started
from refusals import assert_refused

import cvae
from cvae import ConditionalVAE
from cvae.augmentation import _augment
from cvae.augmentation._measure import memorisation, nearest
from cvae.augmentation._plan import plan_counts
from cvae.augmentation._write import as_uint8, folder_names
from cvae.augmentation.datasheet import verdict
from cvae.cli import main
from cvae.data import load_image_folder, stratified_subset
from cvae.evaluation.reference import fit_classifier

AUGMENT = [sys.executable, "-m", "cvae.cli", "augment", "--model", "mnist-mlp"]
QUICK = {"classifier_steps": 40, "seeds": 2}  # a datasheet in seconds; its figures are rough


@pytest.fixture(scope="module")
def mlp():
    return ConditionalVAE.from_pretrained("mnist-mlp")


@pytest.fixture(scope="module")
def small(mnist_train, mnist_test):
    return stratified_subset(mnist_train, 300, 0), stratified_subset(mnist_test, 300, 0)


@pytest.fixture
def no_training(monkeypatch):
    """A refused call must not get as far as training a model."""

    def trained(*args):
        raise AssertionError("a model was trained before the input was refused")

    monkeypatch.setattr(_augment, "_trained", trained)


def test_an_image_folder_with_its_datasheet_that_the_library_reads_back(mlp, small, tmp_path):
    train, test = small
    out = tmp_path / "synthetic"
    sheet = cvae.augment(mlp, train, out, per_class=5, test=test, seed=3, **QUICK)
    assert sorted(p.name for p in out.iterdir()) == [
        "datasheet.json",
        "datasheet.md",
        "images",
        "nearest.png",
    ]
    back = load_image_folder(out / "images")
    assert back.class_names == [str(c) for c in range(10)] and len(back) == 50
    assert torch.bincount(back.labels).tolist() == [5] * 10
    # the very images drawn: the model's samples at the seed, 8 bits a pixel
    labels = torch.arange(10).repeat_interleave(5)
    drawn = mlp.sample(labels, 1, generator=torch.Generator().manual_seed(3))
    assert np.array_equal((back.images * 255).round().byte().permute(0, 2, 3, 1).numpy(), as_uint8(drawn))
    figures = json.loads((out / "datasheet.json").read_text())
    assert figures["counts"] == [5] * 10 and figures["images"] == 50 and figures["real_images"] == 300
    assert figures["verdict"] == verdict(sheet.figures["utility"], [5] * 10, figures["class_names"])
    assert (out / "datasheet.md").read_text().splitlines()[2] == f"**{sheet.verdict}**"
    assert 0 <= figures["memorisation"]["rate"] <= 1 and len(figures["classes"]) == 10
    for name in ("real", "synthetic", "real+synthetic"):
        assert 0 <= figures["utility"][name]["accuracy"] <= 1 and figures["utility"][name]["accuracy_se"] >= 0
    assert Image.open(out / "nearest.png").size == (12 * 2 * 28 + 13 * 2 * 2, 2 * 2 * 28 + 3 * 2 * 2)


def test_the_parquet_and_hf_forms_keep_the_class_names_and_their_order(tmp_path):
    datasets = pytest.importorskip("datasets")
    names = ["T-shirt/top", "Trouser", "Bag"]
    model = ConditionalVAE(
        image_shape=(1, 8, 8),
        num_classes=3,
        class_names=names,
        backbone_kwargs={"hidden_dims": [16]},
        latent_dim=2,
    )
    data = (torch.rand(30, 1, 8, 8), torch.arange(3).repeat(10))
    drawn = {}
    for fmt in ("imagefolder", "parquet", "hf"):
        cvae.augment(model, data, tmp_path / fmt, per_class={"Bag": 2, 0: 3}, format=fmt, datasheet=False)
    folder = load_image_folder(tmp_path / "imagefolder" / "images")
    assert folder.class_names == ["Bag", "T-shirt-top"]  # sorted, as folder readers number them
    parquet = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "parquet" / "data" / "*.parquet"), split="train"
    )
    saved = datasets.load_from_disk(str(tmp_path / "hf" / "dataset"))
    for table in (parquet, saved):
        assert table.features["label"].names == names and table["label"] == [0, 0, 0, 2, 2]
        drawn[len(drawn)] = np.stack([np.asarray(image) for image in table["image"]])
    assert np.array_equal(drawn[0], drawn[1])
    assert np.array_equal(
        np.sort(drawn[0].reshape(5, -1), 0),
        np.sort((folder.images * 255).round().byte().reshape(5, -1).numpy(), 0),
    )


def test_the_set_is_drawn_unguided_unless_guidance_is_given(tmp_path):
    # a model that recommends guidance 1, as `from_data` makes them; untrained, so that its
    # unlabelled decoding differs from its labelled one and guidance changes every image
    model = ConditionalVAE(image_shape=(1, 8, 8), num_classes=3, backbone_kwargs={"hidden_dims": [16]},
                           latent_dim=2, condition_dropout=0.05, sampling={"guidance": 1.0})
    data = (torch.rand(30, 1, 8, 8), torch.arange(3).repeat(10))
    labels = torch.arange(3).repeat_interleave(4)
    drawn = {}
    for name, guidance in (("default", ...), ("recommended", None), ("half", 0.5)):
        given = {} if guidance is ... else {"guidance": guidance}
        sheet = cvae.augment(model, data, tmp_path / name, per_class=4, datasheet=False, seed=1, **given)
        drawn[name] = load_image_folder(tmp_path / name / "images").images
        want = {"default": 0.0, "recommended": 1.0, "half": 0.5}[name]
        assert sheet.figures["sampling"]["guidance"] == want
    for name, guidance in (("default", 0.0), ("recommended", 1.0), ("half", 0.5)):
        want = model.sample(labels, 1, generator=torch.Generator().manual_seed(1), guidance=guidance)
        assert np.array_equal((drawn[name] * 255).round().byte().permute(0, 2, 3, 1).numpy(), as_uint8(want))
    assert not torch.equal(drawn["default"], drawn["recommended"])


@pytest.mark.slow  # trains a model with the defaults: 1,000 steps at least
def test_a_model_trained_with_the_defaults_is_saved_beside_the_set_it_drew(mnist_small, tmp_path):
    images = torch.nn.functional.interpolate(mnist_small.images[:300], size=(8, 8), mode="area")
    data = cvae.LabelledImages(images, mnist_small.labels[:300], mnist_small.class_names)
    out = tmp_path / "out"
    sheet = cvae.augment(None, data, out, per_class=3, datasheet=False, seed=5)
    assert sheet.figures["model"].startswith("the model in model/")
    model = ConditionalVAE.from_pretrained(out / "model")
    back = load_image_folder(out / "images")
    drawn = model.sample(torch.arange(10).repeat_interleave(3), 1, generator=torch.Generator().manual_seed(5),
                         guidance=0)  # the set is drawn unguided; the model keeps its own setting
    assert model.sampling["guidance"] == 1 and sheet.figures["sampling"]["guidance"] == 0
    assert np.array_equal((back.images * 255).round().byte().permute(0, 2, 3, 1).numpy(), as_uint8(drawn))


def test_the_hugging_face_forms_without_the_datasets_package_say_how_to_get_it(
    mlp, small, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what `import datasets` meets where it is missing
    with pytest.raises(
        ImportError, match=r'needs the `datasets` package: pip install "torch-cvae\[datasets\]"'
    ):
        cvae.augment(mlp, small[0], tmp_path / "out", per_class=2, format="parquet", test=small[1])
    assert not (tmp_path / "out").exists()


def test_folder_names_are_the_class_names_made_safe():
    assert folder_names(["a/b", ".hidden", "c"], 3) == ["a-b", "hidden", "c"]
    assert folder_names(["x/", "x\\"], 2) == ["0", "1"]  # one name for two classes: indices
    assert folder_names(None, 2) == ["0", "1"]


def test_balance_draws_what_each_class_lacks_of_the_largest(tmp_path):
    assert plan_counts(torch.tensor([5, 2, 5, 0]), None, balance=True) == [0, 3, 0, 5]
    assert plan_counts(torch.tensor([5, 2]), ["cat", "dog"], per_class={"dog": 4}) == [0, 4]
    assert plan_counts(torch.tensor([5, 2]), None, per_class=7) == [7, 7]
    model = ConditionalVAE(
        image_shape=(1, 8, 8), num_classes=3, backbone_kwargs={"hidden_dims": [16]}, latent_dim=2
    )
    data = (torch.rand(9, 1, 8, 8), torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2]))
    sheet = cvae.augment(model, data, tmp_path / "out", balance=True, test=data, datasheet=False)
    assert sheet.figures["counts"] == [0, 1, 2]
    assert torch.bincount(load_image_folder(tmp_path / "out" / "images").labels).tolist() == [1, 2]


@pytest.mark.usefixtures("no_training")
def test_bad_input_is_refused_before_anything_is_trained_or_written(mlp, small, tmp_path):
    train, test = small
    out = tmp_path / "out"

    def refused(case, model=mlp, data=train, output=out, **settings):
        with pytest.raises(ValueError) as error:
            cvae.augment(model, data, output, test=test, **settings)
        assert_refused(case, error.value)

    refused("augment-class", per_class={"eleven": 3})
    refused("augment-count", per_class=0)
    refused("augment-count-class", per_class={7: -2})
    refused("augment-how-many", per_class=3, balance=True)
    refused("augment-how-many", model=None)
    refused(
        "augment-balanced",
        model=None,
        data=(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])),
        balance=True,
    )
    refused("augment-format", per_class=3, format="zip")
    refused("guidance-value", model=None, per_class=3, guidance=-1.0)
    refused("guidance-no-dropout", per_class=3, guidance=1.0)
    refused("augment-shape", data=(torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 0, 1])), per_class=3)
    refused("augment-label", data=(torch.rand(4, 1, 28, 28), torch.tensor([0, 12, 0, 1])), per_class=3)
    parts = (torch.rand(4, 1, 28, 28), {"digit": torch.tensor([0, 1, 0, 1]), "size": torch.rand(4)})
    refused("augment-data-conditions", model=None, data=parts, per_class=3)
    morpho = ConditionalVAE.from_pretrained("mnist-morpho")
    refused("augment-conditions", model=morpho, per_class=3)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused("augment-output", model=None, per_class=3)
    refused("augment-output-file", model=None, output=out / "notes.txt", per_class=3)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_the_command_refuses_in_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    for args, case in (
        (["--per-class", "0"], "augment-cli-count"),
        (["--per-class", "x"], "augment-cli-count"),
        ([], "augment-cli-how-many"),
        (["--per-class", "3", "--balance"], "augment-cli-how-many"),
        (["--per-class", "=3"], "augment-cli-per-class"),
        (["--per-class", "3", "--guidance", "nan"], "augment-cli-guidance"),
    ):
        code = main(["augment", "--model", "mnist-mlp", "-o", str(out), *args])
        stderr = capsys.readouterr().err
        assert code == 2 and len(stderr.splitlines()) == 1, stderr
        assert_refused(case, f"exit {code}: {stderr.strip()}")
    assert main(["augment", "-o", str(out), "--per-class", "3=4=x"]) == 2
    assert capsys.readouterr().err == (
        "cvae augment: error: --per-class 3=4 must be a whole number from 1 to 2**63 - 1, got 'x'\n"
    )
    assert not out.exists()


def test_a_synthetic_copy_of_training_images_is_memorised_and_a_new_one_is_not():
    real = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(5).repeat(20)
    copies = memorisation(real, real[:100] + 1e-6, labels, 5)
    new = memorisation(real, torch.randn(100, 16, generator=torch.Generator().manual_seed(1)), labels, 5)
    assert copies["rate"] == 1.0 and new["rate"] < 0.05
    assert copies["nearest"].tolist() == list(range(100))
    own, _ = nearest(real, real, skip_self=True)
    assert copies["threshold"] == pytest.approx(torch.quantile(own, 0.01).item())
    half = memorisation(real, torch.cat([real[:50], real[:50] + 100]), labels, 5)
    assert half["rate"] == 0.5 and half["rate_per_class"] == [0.5] * 5


def _utility(real, both, real_recall, both_recall, se=0.005):
    def row(accuracy, recall):
        return {"accuracy": accuracy, "accuracy_se": se, "recall": recall, "recall_se": [se] * len(recall)}

    return {
        "real": row(real, real_recall),
        "synthetic": row(0.5, real_recall),
        "real+synthetic": row(both, both_recall),
    }


def test_the_verdict_says_when_the_set_did_not_help():
    names = ["a", "b", "c"]
    worse = verdict(_utility(0.90, 0.85, [0.9] * 3, [0.85] * 3), [10, 10, 10], names)
    assert not worse["helped"] and worse["line"].startswith("Did not help: accuracy 85.0%")
    assert worse["hurt"] == names and "recall fell for a, b, c" in worse["line"]
    same = verdict(_utility(0.90, 0.905, [0.9, 0.9, 0.9], [0.9, 0.91, 0.9]), [10, 10, 10], names)
    assert not same["helped"] and same["not_helped"] == names
    better = verdict(_utility(0.90, 0.95, [0.9] * 3, [0.95] * 3), [10, 10, 10], names)
    assert better["helped"] and better["line"].startswith("Helped") and better["helped_classes"] == names
    # a rare class raised, accuracy unchanged: helped, for that class
    rare = verdict(_utility(0.90, 0.902, [0.95, 0.6, 0.95], [0.95, 0.8, 0.94]), [0, 30, 0], names)
    assert rare["helped"] and rare["helped_classes"] == ["b"] and rare["not_helped"] == []
    assert "recall rose for b" in rare["line"]
    # the same, but accuracy clearly lower: not helped
    assert not verdict(_utility(0.90, 0.85, [0.95, 0.6, 0.95], [0.95, 0.8, 0.9]), [0, 30, 0], names)["helped"]


def test_the_reference_classifier_learns_and_leaves_the_global_random_state_alone():
    images = torch.zeros(200, 1, 12, 12)
    labels = torch.arange(2).repeat(100)
    images[labels == 1, :, :6] = 1  # class 1: the top half lit
    images += 0.1 * torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    classifier = fit_classifier(images, labels, 2, steps=30, batch_size=32, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert (classifier.predict(images) == labels).float().mean() == 1
    again = fit_classifier(images, labels, 2, steps=30, batch_size=32, seed=1)
    assert torch.equal(again.features(images), classifier.features(images))


@pytest.mark.slow  # two processes write 10,000 images
def test_a_killed_run_leaves_no_set_or_a_whole_one(tmp_path):
    """Killed while it writes 10,000 images: no folder; run again, a whole set and no debris."""
    out = tmp_path / "out"
    command = [*AUGMENT, "--dataset", "mnist", "--limit", "100", "--per-class", "1000", "--no-datasheet"]
    command += ["-o", str(out)]
    with started(command) as process:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.cvae-*/images/*/*.png")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not out.exists()
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the debris cleared
    assert len(list((out / "images").rglob("*.png"))) == 10_000
    assert json.loads((out / "datasheet.json").read_text())["images"] == 10_000


@pytest.mark.slow  # a process, three classifiers
def test_the_command_writes_a_set_and_prints_its_verdict(tmp_path):
    out = tmp_path / "out"
    args = [
        "--limit",
        "200",
        "--per-class",
        "3=6",
        "--per-class",
        "5=4",
        "--classifier-steps",
        "20",
        "--seeds",
        "1",
    ]
    done = subprocess.run([*AUGMENT, *args, "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads((out / "datasheet.json").read_text())
    assert figures["counts"] == [0, 0, 0, 6, 0, 4, 0, 0, 0, 0] and figures["test_images"] == 10_000
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == figures["verdict"]["line"]
    assert lines[-1] == f"wrote 10 images to {out} (images/), with datasheet.md and datasheet.json"
    assert not math.isnan(figures["utility"]["real"]["accuracy"])
    assert "nan" not in (out / "datasheet.md").read_text()  # one seed: no standard error, and none shown

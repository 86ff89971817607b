"""Your own data, honestly: held-out splits, classes by name, channels, Hugging Face datasets."""

import json

import numpy as np
import pytest
import torch
from folders import make_image_folder
from PIL import Image
from refusals import assert_refused

import cvae
from cvae import ConditionalVAE, Trainer
from cvae.cli import main
from cvae.data._splits import stratified_subset, train_test_split


def named_folder(root, names, per_class=5, size=(8, 8), mode="L"):
    """A folder with one sub-folder per name; class c's images are all of brightness 20 c."""
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = (20 * c + i) % 256
            Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(root / name / f"{i}.png")
    return root


def rows(images):
    return {tuple(x.flatten().tolist()) for x in images}


def cli(capsys, *args):
    code = main([*args])
    out = capsys.readouterr()
    return code, out.out, out.err


# Held-out splits


def test_a_folder_has_a_real_held_out_split_stratified_and_seeded(tmp_path):
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10)
    train = cvae.load_dataset(folder)
    test = cvae.load_dataset(folder, train=False)
    whole = cvae.data.load_image_folder(folder)
    assert (len(train), len(test)) == (24, 6)
    assert torch.bincount(test.labels).tolist() == [2, 2, 2]
    assert not rows(train.images) & rows(test.images)
    assert rows(train.images) | rows(test.images) == rows(whole.images)
    assert test.split == "held-out (20% of each class, seed 0)"
    again = cvae.load_dataset(folder, train=False)
    assert torch.equal(again.images, test.images)
    other = cvae.load_dataset(folder, train=False, split_seed=1)
    assert not torch.equal(other.images, test.images)
    assert len(cvae.load_dataset(folder, train=False, test_fraction=0.5)) == 15


def test_tensors_and_numpy_pairs_split_the_same_way():
    images = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(40) % 4
    train, test = train_test_split((images, labels), test_fraction=0.25, seed=3)
    train_np, test_np = train_test_split((images.numpy(), labels.numpy()), test_fraction=0.25, seed=3)
    assert torch.equal(test.images, test_np.images) and len(train) == 28
    assert torch.bincount(test.labels).tolist() == [3, 3, 3, 3]  # 2.5 of 10, rounded up
    assert not rows(train.images) & rows(test.images)
    # adding images to one class leaves the held-out images of the others as they were
    more = torch.cat([images, torch.rand(8, 1, 4, 4)]), torch.cat([labels, torch.full((8,), 3)])
    _, test_more = train_test_split(more, test_fraction=0.25, seed=3)
    kept = test_more.labels < 3
    assert torch.equal(test_more.images[kept], test.images[test.labels < 3])


def test_the_python_api_and_cvae_train_agree_as_the_guide_runs_them(tmp_path, capsys):
    """The custom-data guide's Python and command-line runs on one folder: the same held-out
    loss. Before, they ended far apart (the Python run drew its initial weights unseeded,
    with other conv channels) and the guide did not say why."""
    folder = make_image_folder(tmp_path / "shapes", classes=5, per_class=10, size=(16, 16), mode="RGB")
    train, test = cvae.data.load_splits(folder)
    torch.manual_seed(0)
    model = ConditionalVAE.from_data(train, backbone="conv", backbone_kwargs={"channels": [16, 32]})
    Trainer(model, train, test, epochs=3, batch_size=8, seed=0, verbose=False, progress=False).train()
    python = Trainer(model, train, test, epochs=3, seed=0, verbose=False).evaluate(test)["nelbo"]
    code, printed, err = cli(capsys, "train", "--dataset", str(folder), "--backbone", "conv",
                             "--backbone-kwargs", '{"channels": [16, 32]}', "--epochs", "3",
                             "--batch-size", "8", "--no-progress", "-o", str(tmp_path / "run"))
    assert code == 0, err
    line = next(line for line in printed.splitlines() if line.startswith("====> Held-out set loss"))
    assert float(line.split()[4]) == pytest.approx(python, abs=1e-3)


def test_cvae_train_validates_on_the_held_out_split_and_says_so(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10, size=(8, 8))
    out = tmp_path / "run"
    code, printed, err = cli(capsys, "train", "--dataset", str(folder), "--epochs", "2",
                             "--hidden-dims", "16", "--latent-dim", "2", "--no-progress", "-o", str(out))
    assert code == 0, err
    assert printed.count("Validation loss") == 2
    # The folder's images are grey: the default likelihood is the one that suits them.
    assert json.loads((out / "config.json").read_text())["likelihood"] == "gaussian"
    assert "likelihood 'gaussian', which suits these images" in printed
    code, _, err = cli(capsys, "train", "--dataset", str(tmp_path / "missing"), "--likelihood", "poisson",
                       "-o", str(tmp_path / "r2"))
    assert code == 2 and "no likelihood named 'poisson'" in err  # named before the data are looked for
    assert "Held-out set loss" in printed and "(6 images: held-out (20% of each class, seed 0))" in printed
    card = (out / "README.md").read_text()
    assert "split: held-out" in card and "split: test" not in card
    assert "on 24 images" in card and "Measured on 6 images that it never trained on" in card
    run = json.loads((out / "training_history.json").read_text())["run"]
    assert run["test"] == {"split": "held-out (20% of each class, seed 0)", "images": 6}
    code, printed, err = cli(capsys, "eval", str(out), "--dataset", str(folder), "-k", "2",
                             "-o", str(tmp_path / "e.json"))
    assert code == 0, err
    assert "on 6 images of" in printed and "held-out (20% of each class, seed 0) split" in printed
    record = json.loads((tmp_path / "e.json").read_text())
    assert record["split"].startswith("held-out") and record["test_images"] == 6


def test_cvae_eval_measures_on_the_held_out_split_the_model_was_trained_beside(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10, size=(8, 8))
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--dataset", str(folder), "--epochs", "1", "--test-fraction",
                       "0.5", "--split-seed", "3", "--hidden-dims", "16", "--latent-dim", "2",
                       "--no-progress", "--no-validation", "-o", str(out))
    assert code == 0, err
    code, printed, err = cli(capsys, "eval", str(out), "--dataset", str(folder), "-k", "2",
                             "-o", str(tmp_path / "e.json"))
    assert code == 0, err
    record = json.loads((tmp_path / "e.json").read_text())
    assert record["test_images"] == 15 and "seed 3" in record["split"] and "note:" not in printed
    code, printed, err = cli(capsys, "eval", str(out), "--dataset", str(folder), "-k", "2",
                             "--test-fraction", "0.2", "-o", str(tmp_path / "e.json"))
    assert code == 0, err
    assert "note: the model was trained beside a held-out split of 0.5" in printed
    assert json.loads((tmp_path / "e.json").read_text())["test_images"] == 6


def test_cvae_eval_of_a_run_folder_measures_on_the_data_the_run_recorded(tmp_path, capsys, monkeypatch):
    """Before, without --dataset it measured on MNIST: the wrong data, or an error."""
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10, size=(8, 8))
    monkeypatch.chdir(tmp_path)  # the run records the folder as given: a relative path
    code, _, err = cli(capsys, "train", "--dataset", "pets", "--epochs", "1", "--test-fraction", "0.5",
                       "--hidden-dims", "16", "--latent-dim", "2", "--no-progress", "-o", "run")
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where "pets" leads nowhere
    code, printed, err = cli(capsys, "eval", str(tmp_path / "run"), "-k", "2", "-o", "e.json")
    assert code == 0, err
    assert f"measuring on {folder}, the data set that" in printed
    record = json.loads((elsewhere / "e.json").read_text())
    assert record["test_images"] == 15 and record["split"].startswith("held-out (50% of each class")
    assert record["dataset"] == str(folder)


def test_cvae_eval_reads_a_folder_as_cvae_train_did(tmp_path, capsys):
    """A model trained with --channels and --image-size is measured on images read the same
    way; before, cvae eval read the folder afresh and refused its mix of grey and colour."""
    from PIL import Image

    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10, size=(10, 10), mode="L")
    for path in sorted(folder.rglob("*.png"))[::2]:  # half of them grey pixels in an RGB file
        Image.open(path).convert("RGB").save(path)
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--dataset", str(folder), "--channels", "1", "--image-size", "8",
                       "6", "--epochs", "1", "--hidden-dims", "16", "--latent-dim", "2", "--no-progress",
                       "-o", str(out))
    assert code == 0, err
    code, printed, err = cli(capsys, "eval", str(out), "--dataset", str(folder), "-k", "2",
                             "-o", str(tmp_path / "e.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["test_images"] == 6
    # asked for otherwise, the folder is read otherwise: and refused, as it does not fit the model
    code, _, err = cli(capsys, "eval", str(out), "--dataset", str(folder), "--channels", "3", "-k", "2",
                       "-o", str(tmp_path / "e.json"))
    assert code == 2 and "images must be (B, 1, 8, 6) for this model, got shape (6, 3, 8, 6)" in err
    # transfer and interpolate read the folder's images in the model's shape, as their files
    for command in ("transfer", "interpolate"):
        code, printed, err = cli(capsys, command, "--model", str(out), "--dataset", str(folder),
                                 "--index", "0", "1", "-o", str(tmp_path / f"{command}.png"))
        assert code == 0 and (tmp_path / f"{command}.png").is_file(), err


def test_transfer_refuses_images_of_other_classes_than_the_models(capsys, tmp_path):
    """Before, the default MNIST model redrew Fashion-MNIST's images without a word."""
    code, _, err = cli(capsys, "transfer", "--dataset", "fashion-mnist", "-o", str(tmp_path / "t.png"))
    assert code == 2 and not (tmp_path / "t.png").exists()
    assert "the input data name class 0 'T-shirt/top', but the model calls it '0'" in err


def test_a_folder_too_large_for_memory_is_refused_before_a_file_is_decoded(tmp_path, monkeypatch):
    from cvae import _devices as devices
    from cvae.data import _folders as folders

    folder = make_image_folder(tmp_path / "pets", classes=2, per_class=3, size=(20, 30))
    decoded = []
    monkeypatch.setattr(folders, "read_pixels", lambda *args: decoded.append(args))
    monkeypatch.setattr(devices, "available_bytes", lambda device: 2**10)  # 1 KiB free
    with pytest.raises(MemoryError) as err:
        cvae.data.load_image_folder(folder)
    assert_refused("folder-memory", err.value)
    assert f"reading 6 images of (3, 20, 30) from {folder}" in str(err.value) and not decoded


# Classes by name


def test_names_win_over_indices_and_every_message_and_file_names_the_class(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["1", "10", "2"]  # sorted as text: class 1 is "10"
    model = ConditionalVAE.from_data(cvae.data.load_image_folder(named_folder(tmp_path / "d", names)))
    assert model.class_names == names and model.image_shape == (1, 8, 8)
    model.save_pretrained(tmp_path / "m")
    g = torch.Generator()
    assert torch.equal(model.sample("10", 2, generator=g.manual_seed(0)),
                       model.sample(1, 2, generator=g.manual_seed(0)))
    code, printed, err = cli(capsys, "sample", "--label", "10", "--model", str(tmp_path / "m"),
                             "-n", "4", "--seed", "0")
    assert code == 0, err
    assert "wrote 4 images of '10' (class 1) to samples-10.png" in printed
    with Image.open("samples-10.png") as png:
        assert "'10' (class 1)" in png.info["Description"]
    with pytest.raises(ValueError) as caught:
        model.sample("0")  # not a name, and as an index it would draw "1"
    assert_refused("label-name-number", caught.value)
    code, printed, err = cli(capsys, "sample", "--label", "0", "--model", str(tmp_path / "m"))
    assert code == 2 and str(caught.value) in err


def test_an_index_given_as_text_draws_the_class_it_names_in_the_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["zero", "one", "two", "three"]  # sorted: one, three, two, zero
    data = cvae.data.load_image_folder(named_folder(tmp_path / "d", names))
    ConditionalVAE.from_data(data).save_pretrained(tmp_path / "m")
    code, printed, _ = cli(capsys, "sample", "--digit", "3", "--model", str(tmp_path / "m"), "-n", "2")
    assert code == 0 and "of 'zero' (class 3)" in printed and (tmp_path / "samples-zero.png").is_file()
    card = cvae.hub._card.make_model_card(ConditionalVAE.from_data(data), name="org/m")
    assert 'model.sample("one", n=16)' in card


def test_numpy_integers_are_labels():
    model = ConditionalVAE(num_classes=3, class_names=["a", "b", "c"])
    g = torch.Generator()
    assert torch.equal(model.sample(np.int64(2), 2, generator=g.manual_seed(0)),
                       model.sample(2, 2, generator=g.manual_seed(0)))
    assert model.sample(np.array([0, 2]), 1).shape == (2, 1, 28, 28)
    assert model._labels_to_tensor(np.array(["c", "a"])).tolist() == [2, 0]


def test_unicode_class_names_survive_in_any_normal_form(tmp_path):
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "café")
    data = cvae.data.load_image_folder(named_folder(tmp_path / "d", [decomposed, "thé"]))
    model = ConditionalVAE.from_data(data)
    assert model.class_names[0] == "café"  # composed, as people type it
    assert model._labels_to_tensor([decomposed, "café"]).tolist() == [0, 0]


# Subsets


def test_limit_draws_every_class_in_proportion(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "ten", classes=10, per_class=6, size=(8, 8))
    data = cvae.load_dataset(folder)
    subset = stratified_subset(data, 20, seed=0)
    assert torch.bincount(subset.labels, minlength=10).tolist() == [2] * 10
    assert len(stratified_subset(data, 5, seed=0).labels.unique()) == 5
    assert not torch.equal(stratified_subset(data, 20, seed=1).images, subset.images)
    code, printed, err = cli(capsys, "train", "--dataset", str(folder), "--limit", "20", "--epochs", "1",
                             "--hidden-dims", "8", "--latent-dim", "2", "--no-progress",
                             "-o", str(tmp_path / "run"))
    assert code == 0, err
    run = json.loads((tmp_path / "run" / "training_history.json").read_text())["run"]
    assert run["train"]["images"] == 20 and "20 drawn by class (seed 0)" in run["train"]["split"]


# Channels, broken files, empty classes


def test_channels_are_decided_from_every_file(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "photos", classes=2, per_class=4, size=(8, 8))
    Image.new("L", (8, 8), 90).save(folder / "class-0" / "0.png")  # the first file, grey
    with pytest.raises(ValueError) as caught:
        cvae.data.load_image_folder(folder)
    assert_refused("folder-channels-mixed", caught.value)
    assert cvae.data.load_image_folder(folder, channels=3).images.shape[1] == 3
    assert cvae.data.load_image_folder(folder, channels=1).images.shape[1] == 1
    code, _, err = cli(capsys, "train", "--dataset", str(folder), "--epochs", "0", "--no-progress",
                       "-o", str(tmp_path / "r"))
    assert code == 2 and "(--channels 3)" in err
    code, _, err = cli(capsys, "train", "--dataset", str(folder), "--channels", "3", "--epochs", "0",
                       "--hidden-dims", "8", "--no-progress", "-o", str(tmp_path / "r"))
    assert code == 0, err
    assert ConditionalVAE.from_pretrained(tmp_path / "r").image_shape == (3, 8, 8)
    grey = named_folder(tmp_path / "grey", ["a", "b"])
    assert cvae.data.load_image_folder(grey).images.shape[1] == 1


def test_grey_images_saved_as_rgb_get_advice_to_read_them_as_grey(tmp_path, capsys):
    folder = named_folder(tmp_path / "grey-as-rgb", ["a", "b"], per_class=4)
    for path in folder.rglob("*.png"):
        Image.open(path).convert("RGB").save(path)  # grey pixels in RGB files: three equal channels
    train = ["train", "--epochs", "0", "--hidden-dims", "8", "--no-progress", "--no-validation"]
    code, _, err = cli(capsys, *train, "--dataset", str(folder), "-o", str(tmp_path / "rgb"))
    assert code == 0, err
    assert err.count("three equal channels") == 1 and "cvae train --channels 1" in err
    assert ConditionalVAE.from_pretrained(tmp_path / "rgb").image_shape == (3, 8, 8)  # read as asked
    code, _, err = cli(capsys, *train, "--dataset", str(folder), "--channels", "1",
                       "-o", str(tmp_path / "grey"))
    assert code == 0 and "three equal channels" not in err
    colour = make_image_folder(tmp_path / "colour", classes=2, per_class=4, size=(8, 8))
    code, _, err = cli(capsys, *train, "--dataset", str(colour), "-o", str(tmp_path / "colour-model"))
    assert code == 0 and "three equal channels" not in err
    one_pixel_apart = torch.rand(8, 1, 4, 4).repeat(1, 3, 1, 1)
    one_pixel_apart[0, 2, 0, 0] += 0.01
    assert cvae.training._feed._grey_advice(one_pixel_apart) is None


def test_sixteen_bit_grey_images_keep_their_brightness(tmp_path):
    for c in range(2):
        (tmp_path / "d" / f"c{c}").mkdir(parents=True)
        pixels = np.full((4, 4), 65535 // (c + 1), dtype=np.uint16)
        Image.fromarray(pixels).save(tmp_path / "d" / f"c{c}" / "x.png")
    data = cvae.data.load_image_folder(tmp_path / "d")
    assert data.images.shape == (2, 1, 4, 4)
    assert data.images[:, 0, 0, 0].tolist() == pytest.approx([1.0, 0.5], abs=0.01)


def test_float_grey_images_keep_their_brightness_and_odd_ranges_are_refused(tmp_path):
    # 32-bit float TIFFs (mode F) in [0, 1], and in [0, 255]: both read as the same grey
    for c, scale in enumerate((1.0, 255.0)):
        (tmp_path / "d" / f"c{c}").mkdir(parents=True)
        grey = np.full((4, 4), 0.5 * scale, dtype=np.float32)
        Image.fromarray(grey).save(tmp_path / "d" / f"c{c}" / "x.tif")
    data = cvae.data.load_image_folder(tmp_path / "d")
    assert data.images.shape == (2, 1, 4, 4)
    assert data.images[:, 0, 0, 0].tolist() == pytest.approx([0.5, 0.5], abs=0.01)
    read = cvae.data.load_images([tmp_path / "d" / "c0" / "x.tif"], (1, 4, 4))
    assert read.mean().item() == pytest.approx(0.5, abs=0.01)
    Image.fromarray(np.full((4, 4), -3.0, dtype=np.float32)).save(tmp_path / "d" / "c1" / "y.tif")
    with pytest.raises(ValueError) as caught:
        cvae.data.load_image_folder(tmp_path / "d")
    assert_refused("folder-float-range", caught.value)


def test_a_file_that_is_not_an_image_and_an_empty_class_are_named(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "d", classes=2, per_class=2, size=(8, 8))
    (folder / "class-1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError) as caught:
        cvae.load_dataset(folder)
    assert_refused("folder-not-image", caught.value)
    assert main(["train", "--dataset", str(folder), "-o", str(tmp_path / "r")]) == 2
    assert "class-1/broken.png" in capsys.readouterr().err
    (folder / "class-1" / "broken.png").unlink()
    (folder / "class-2").mkdir()
    (folder / "class-2" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError) as caught:
        cvae.load_dataset(folder)
    assert_refused("folder-empty-class", caught.value)


# Class names flow from the data to the model


def test_the_trainer_gives_a_new_model_the_data_class_names(tmp_path):
    data = cvae.load_dataset("fashion-mnist", train=False)
    model = ConditionalVAE()
    Trainer(model, (data.images[:256], data.labels[:256]), epochs=0, verbose=False)  # tensors: no names
    assert model.class_names is None
    Trainer(model, data.select(torch.arange(256)), epochs=1, verbose=False).train()
    assert model.class_names == data.class_names and model.sample("Sneaker", 2).shape == (2, 1, 28, 28)
    model.save_pretrained(tmp_path / "m")
    assert ConditionalVAE.from_pretrained(tmp_path / "m").class_names[7] == "Sneaker"


def test_class_names_that_conflict_are_refused_before_training():
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 2
    model = ConditionalVAE(num_classes=2, class_names=["cat", "dog"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as caught:
        Trainer(model, cvae.LabelledImages(x, y, ["dog", "cat"]), verbose=False)
    assert_refused("classes-differ", caught.value)
    with pytest.raises(ValueError) as caught:
        Trainer(ConditionalVAE(), cvae.LabelledImages(x, y, ["cat", "dog"]), verbose=False)
    assert_refused("classes-count", caught.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_command_line_refuses_data_options_that_do_not_apply(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--dataset", "mnist", "--channels", "3", "-o", str(tmp_path / "r"))
    assert_refused("cli-data-option", f"exit {code}: {err.strip().splitlines()[-1]}")
    with pytest.raises(SystemExit) as caught:
        main(["train", "--test-fraction", "1.5", "-o", str(tmp_path / "r")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert_refused("cli-test-fraction", f"exit {caught.value.code}: {last}")
    assert not (tmp_path / "r").exists()


# Hugging Face datasets


def test_a_hugging_face_dataset_trains_with_its_class_names():
    from hf_fixtures import image_dataset

    hf = image_dataset(40, names=("ant", "bee", "cat", "dog"))
    model = ConditionalVAE.from_data(hf)
    assert model.image_shape == (1, 12, 12) and model.class_names == ["ant", "bee", "cat", "dog"]
    wrapped = cvae.data.as_dataset(hf)
    image, label = wrapped[5]
    assert label == 1 and torch.equal(image, torch.as_tensor(np.array(hf[5]["image"]))[None] / 255)
    fresh = ConditionalVAE(image_shape=(1, 12, 12), num_classes=4, latent_dim=2)
    Trainer(fresh, hf, epochs=1, batch_size=16, verbose=False).train()
    assert fresh.class_names == ["ant", "bee", "cat", "dog"]
    assert fresh.sample("cat", 2).shape == (2, 1, 12, 12)


def test_a_hugging_face_dataset_is_read_a_batch_at_a_time(monkeypatch):
    """Arrow data are decoded a batch at a time: never a whole column of Python objects."""
    import datasets
    from hf_fixtures import image_dataset

    hf = image_dataset(300, mode="RGB")
    asked = []
    original = datasets.Dataset.__getitem__

    def spy(self, key):
        asked.append(key)
        return original(self, key)

    monkeypatch.setattr(datasets.Dataset, "__getitem__", spy)
    data = cvae.data.to_tensors(cvae.data.as_dataset(hf), batch_size=64)
    assert data.images.shape == (300, 3, 12, 12) and data.class_names == ["a", "b", "c", "d"]
    assert "image" not in asked  # the whole image column, as PIL images
    assert max(len(k) if isinstance(k, list) else 1 for k in asked if not isinstance(k, str)) <= 64


def test_streaming_a_hugging_face_dataset_trains_as_in_memory_does():
    from hf_fixtures import image_dataset

    hf = image_dataset(48)
    runs = []
    for in_memory in (True, False):
        torch.manual_seed(0)
        model = ConditionalVAE.from_data(hf, latent_dim=2, backbone_kwargs={"hidden_dims": [16]})
        runs.append(Trainer(model, hf, epochs=2, batch_size=16, seed=0, in_memory=in_memory,
                            verbose=False).train())
    assert [r["loss"] for r in runs[0]] == pytest.approx([r["loss"] for r in runs[1]], rel=1e-5)


def test_local_parquet_and_saved_copies_load_with_held_out_splits(tmp_path):
    from hf_fixtures import image_dataset

    hf = image_dataset(40)
    hf.to_parquet(str(tmp_path / "digits.parquet"))
    hf.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "digits.parquet", tmp_path / "saved"):
        train, test = cvae.data.load_splits(f"hf:{path}")
        assert (len(train), len(test)) == (32, 8) and test.split.startswith("held-out")
        assert train.class_names == ["a", "b", "c", "d"] and not rows(train.images) & rows(test.images)
    lazy = cvae.load_dataset(f"hf:{tmp_path / 'saved'}", in_memory=False)
    assert isinstance(lazy, torch.utils.data.Subset) and len(lazy) == 32


def test_a_local_image_folder_loads_through_hugging_face_as_through_cvae(tmp_path):
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=5, size=(8, 8))
    hf_train, hf_test = cvae.data.load_splits(f"hf:{folder}")
    ours_train, ours_test = cvae.data.load_splits(folder)
    assert hf_train.class_names == ours_train.class_names == ["class-0", "class-1", "class-2"]
    assert rows(hf_train.images) | rows(hf_test.images) == rows(ours_train.images) | rows(ours_test.images)


@pytest.mark.slow  # compiles a model
def test_cvae_train_compile_trains_with_a_compiled_loss(tmp_path, capsys, monkeypatch):
    compiled, real = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(kw) or real(fn, **kw))
    folder = make_image_folder(tmp_path / "pets", classes=3, per_class=10, size=(8, 8))
    code, printed, err = cli(capsys, "train", "--dataset", str(folder), "--epochs", "2", "--compile",
                             "--hidden-dims", "16", "--latent-dim", "2", "--no-progress",
                             "-o", str(tmp_path / "run"))
    assert code == 0, err
    assert compiled == [{"dynamic": False}] and printed.count("Validation loss") == 2

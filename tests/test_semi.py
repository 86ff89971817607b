"""Partly labelled data and the M2 model (`cvae.data._semi`)."""

import json
import subprocess
import sys

import pytest
import torch
from folders import make_image_folder
from refusals import assert_refused

import cvae
import cvae.cli
import cvae.cli._commands
from cvae._classes import UNLABELLED
from cvae.data._semi import partly_labelled, with_unlabelled
from cvae.models.backbones import MLPDecoder, MLPEncoder


def semi_model(**settings):
    torch.manual_seed(0)
    return cvae.ConditionalVAE(latent_dim=4, backbone_kwargs={"hidden_dims": [32]},
                               semi_supervised=True, **settings)


def test_partly_labelled_keeps_a_seeded_few_of_each_class_and_repeats_them(mnist_test):
    data = (mnist_test.images[:2000], mnist_test.labels[:2000])
    kept = partly_labelled(data, 3, seed=1)
    labelled = kept.labels != UNLABELLED
    assert len(kept) == 2000 and int(labelled.sum()) == 30
    assert torch.bincount(kept.labels[labelled], minlength=10).tolist() == [3] * 10
    assert torch.equal(kept.labels[labelled], data[1][labelled])  # the labels kept are the true ones
    assert torch.equal(partly_labelled(data, 3, seed=1).labels, kept.labels)
    assert not torch.equal(partly_labelled(data, 3, seed=2).labels, kept.labels)
    repeated = partly_labelled(data, 3, seed=1, repeat=4)
    assert len(repeated) == 2000 + 3 * 30 and int((repeated.labels != UNLABELLED).sum()) == 120
    assert torch.equal(repeated.images[2000:2030], data[0][labelled])


def test_a_separate_unlabelled_set_joins_the_labelled_one(mnist_test):
    labelled = (mnist_test.images[:20], mnist_test.labels[:20])
    extra = mnist_test.images[20:50]
    data = with_unlabelled(labelled, extra, repeat=3)
    assert len(data) == 20 + 30 + 2 * 20
    assert torch.equal(data.images[20:50], extra) and (data.labels[20:50] == UNLABELLED).all()
    assert torch.equal(data.labels[:20], labelled[1]) and torch.equal(data.labels[50:70], labelled[1])
    # partly_labelled's repeats are with_unlabelled's: the same images in the same order
    part = partly_labelled(mnist_test.select(torch.arange(200)), 2, seed=0, repeat=3)
    assert torch.equal(with_unlabelled(part.select(torch.arange(200)), repeat=3).images, part.images)


class NoneLabels(torch.utils.data.Dataset):
    """A dataset whose unlabelled items give the label None."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        x, y = self.data[i]
        return x, None if i % 3 == 0 else int(y)


def test_a_dataset_that_gives_none_for_a_label_is_read_as_unlabelled(mnist_test):
    data = NoneLabels(mnist_test.select(torch.arange(300)))
    read = cvae.data._labelled.to_tensors(data)
    assert (read.labels[::3] == UNLABELLED).all() and (read.labels[1::3] >= 0).all()
    assert torch.equal(cvae.data._labelled.labels_of(data), read.labels)
    # streamed batch by batch, as read into memory: both train a semi-supervised model
    for in_memory in (True, False):
        history = cvae.Trainer(semi_model(), data, epochs=1, in_memory=in_memory, verbose=False,
                               progress=False).train()
        assert history[-1]["loss"] > 0


def test_a_folder_of_unlabelled_images_is_not_a_class(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", classes=4, per_class=10, size=(8, 8), mode="L")
    (folder / "class-3").rename(folder / "unsorted")
    data = cvae.data.load_image_folder(folder, unlabelled="unsorted")
    assert data.class_names == ["class-0", "class-1", "class-2"]
    assert int((data.labels == UNLABELLED).sum()) == 10
    train, test = cvae.data.load_splits(folder, unlabelled="unsorted")
    assert int((train.labels == UNLABELLED).sum()) == 10  # every unlabelled image trains
    assert (test.labels >= 0).all() and torch.bincount(test.labels).tolist() == [2, 2, 2]
    # Without the option, the folder is a class like the others.
    assert len(cvae.data.load_image_folder(folder).class_names) == 4


def test_hugging_face_rows_labelled_minus_one_are_kept_as_unlabelled_when_asked():
    from hf_fixtures import image_dataset

    from cvae.data._hf import HFImages

    rows = image_dataset(40).map(lambda row, i: {"label": -1 if i % 5 == 1 else row["label"]},
                                 with_indices=True)
    with pytest.raises(ValueError, match="keep_unlabelled=True"):
        HFImages(rows)
    data = HFImages(rows, keep_unlabelled=True)
    train, test = cvae.train_test_split(data, test_fraction=0.25)
    assert int((cvae.data._labelled.labels_of(train) == UNLABELLED).sum()) == 8 and len(test) == 8
    assert (cvae.data._labelled.labels_of(test) >= 0).all()
    model = cvae.ConditionalVAE.from_data(train, latent_dim=2, backbone_kwargs={"hidden_dims": [16]},
                                          semi_supervised=True)
    history = cvae.Trainer(model, train, epochs=1, verbose=False, progress=False).train()
    assert history[-1]["loss"] > 0


def test_cvae_train_learns_from_a_folder_of_unlabelled_images(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "shapes", classes=4, per_class=10, size=(8, 8), mode="L")
    (folder / "class-3").rename(folder / "unsorted")
    out = tmp_path / "run"
    code = cvae.cli.main(["train", "--dataset", str(folder), "--unlabelled-folder", "unsorted",
                          "--repeat-labelled", "2", "--epochs", "1", "--hidden-dims", "16",
                          "--latent-dim", "2", "--no-progress", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    model = cvae.ConditionalVAE.from_pretrained(out)
    assert model.config["semi_supervised"] and model.class_names == ["class-0", "class-1", "class-2"]
    card = (out / "README.md").read_text()  # each image counted once, the repeats said apart
    assert "on 34 images (24 labelled, each 2 times an epoch, 10 unlabelled) (train (80%" in card
    run = json.loads((out / "training_history.json").read_text())["run"]
    assert run["train"] == {"split": run["train"]["split"], "images": 34, "labelled": 24, "unlabelled": 10}
    # The run recorded its unlabelled folder: cvae eval needs not be told again.
    code = cvae.cli.main(["eval", str(out), "--dataset", str(folder), "-k", "2",
                          "-o", str(tmp_path / "e.json")])
    assert code == 0, capsys.readouterr().err
    assert "classified by the model's classifier" in capsys.readouterr().out


def test_the_m2_loss_is_the_papers(mnist_test):
    """Labelled images: L(x, y) + weight * cross-entropy in training; unlabelled ones:
    sum_y q(y|x) L(x, y) - H(q), computed here from the plain loss of each class."""
    model = semi_model(classifier_weight=3.0)
    x, y = mnist_test.images[:6], mnist_test.labels[:6].clone()
    y[[1, 4]] = UNLABELLED
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    model.train()
    got = model.loss(x, y, noise=noise, reduction="none")
    model.eval()
    with torch.no_grad():
        log_q = torch.log_softmax(model.classifier_logits(x), 1)
        for i in range(6):
            if y[i] != UNLABELLED:
                want = model.loss(x[i:i + 1], y[i:i + 1], noise=noise[i:i + 1], reduction="none").loss
                want = want + 3.0 * -log_q[i, y[i]]
            else:
                each = torch.cat([model.loss(x[i:i + 1], torch.tensor([c]), noise=noise[i:i + 1],
                                             reduction="none").loss for c in range(10)])
                q = log_q[i].exp()
                want = (q * each).sum() + (q * log_q[i]).sum()
            assert torch.allclose(got.loss[i], want.squeeze(), rtol=1e-5), i
        # In eval mode, the loss of labelled images is the plain negative ELBO.
        model.eval()
        known = y != UNLABELLED
        plain = model.loss(x[known], y[known], noise=noise[known], reduction="none")
        assert torch.allclose(model.loss(x, y, noise=noise, reduction="none").loss[known], plain.loss)


def test_a_few_labels_train_the_classifier_through_the_trainer(tmp_path, mnist_test):
    data = partly_labelled((mnist_test.images[:3000], mnist_test.labels[:3000]), 10, seed=0,
                           repeat=10)
    model = semi_model(classifier_weight=20.0)
    held_out = mnist_test.images[5000:6000], mnist_test.labels[5000:6000]
    chance = (model.classify(held_out[0]).argmax(1) == held_out[1]).float().mean().item()
    history = cvae.Trainer(model, data, epochs=3, seed=0, verbose=False, progress=False).train()
    accuracy = (model.classify(held_out[0]).argmax(1) == held_out[1]).float().mean().item()
    assert chance < 0.25 and accuracy > 0.6  # from 100 labels and 2,900 unlabelled digits
    assert history[-1]["active_units"] >= 1  # counted on the labelled images
    model.save_pretrained(tmp_path / "m2")
    loaded = cvae.ConditionalVAE.from_pretrained(tmp_path / "m2")
    assert loaded.config["semi_supervised"] and loaded.config["classifier_weight"] == 20.0
    assert torch.equal(loaded.classify(held_out[0][:50]), model.classify(held_out[0][:50]))


def test_the_conv_backbone_gets_a_conv_classifier_that_trains_saves_and_loads(tmp_path, mnist_test):
    # how the convolutional M2 of the guide is built: the classifier is the backbone's encoder
    torch.manual_seed(0)
    model = cvae.ConditionalVAE(latent_dim=4, backbone="conv", semi_supervised=True,
                                backbone_kwargs={"channels": [8, 16], "hidden_dim": 32})
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.classifier.modules())
    x, y = mnist_test.images[:64], mnist_test.labels[:64].clone()
    y[::2] = UNLABELLED
    model.loss(x, y).loss.backward()  # the unlabelled half reaches the classifier through q(y | x)
    used = [p for name, p in model.classifier.named_parameters() if not name.startswith("logvar")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in used)  # the logvar head is unused
    model.save_pretrained(tmp_path / "m2")
    loaded = cvae.ConditionalVAE.from_pretrained(tmp_path / "m2")
    assert loaded.config["backbone"] == "conv" and loaded.config["semi_supervised"]
    assert torch.equal(loaded.classify(x), model.classify(x))


@pytest.mark.parametrize("case", ["unlabelled-not-semi", "semi-missing-class", "labels-per-class",
                                  "classify-no-classifier", "semi-modules", "semi-free-bits",
                                  "labels-class-small", "unlabelled-shape", "unlabelled-folder-missing",
                                  "unlabelled-folder-only"])
def test_refused_as_documented(case, mnist_test, tmp_path):
    x, y = mnist_test.images[:40], mnist_test.labels[:40].clone()
    y[::2] = UNLABELLED
    calls = {
        "unlabelled-not-semi": lambda: cvae.Trainer(cvae.ConditionalVAE(), (x, y), verbose=False),
        "semi-missing-class": lambda: cvae.Trainer(semi_model(), (x, torch.where(
            mnist_test.labels[:40] == 3, UNLABELLED, y)), verbose=False),
        "labels-per-class": lambda: partly_labelled((x, mnist_test.labels[:40]), 0),
        "labels-class-small": lambda: partly_labelled(
            (x[:10], torch.tensor([0] * 4 + [1] * 6)), 5),
        "classify-no-classifier": lambda: cvae.ConditionalVAE().classify(x),
        "semi-modules": lambda: cvae.ConditionalVAE(
            encoder=MLPEncoder((1, 28, 28), 10, 2), decoder=MLPDecoder((1, 28, 28), 10, 2),
            semi_supervised=True),
        "semi-free-bits": lambda: semi_model().train().loss(x, y, free_bits=0.5),
        "unlabelled-shape": lambda: with_unlabelled((x, mnist_test.labels[:40]), torch.rand(5, 1, 8, 8)),
        "unlabelled-folder-missing": lambda: cvae.data.load_image_folder(
            make_image_folder(tmp_path / "f", classes=2, per_class=2, size=(4, 4)), unlabelled="rest"),
        "unlabelled-folder-only": lambda: cvae.cli._run_data.data_options(cvae.cli.build_parser().parse_args(
            ["train", "--unlabelled-folder", "rest", "-o", str(tmp_path / "o")])),
    }
    with pytest.raises(Exception) as caught:
        calls[case]()
    assert_refused(case, caught.value)


@pytest.mark.slow  # two commands, each with its start-up
def test_cvae_train_keeps_a_few_labels_and_cvae_eval_reports_the_classifier(tmp_path):
    folder = tmp_path / "m2"
    train = subprocess.run([sys.executable, "-m", "cvae.cli", "train", "--limit", "1000",
                            "--labels-per-class", "3", "--repeat-labelled", "4", "--epochs", "2",
                            "--no-validation", "--no-progress", "-o", str(folder)],
                           capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    config = json.loads((folder / "config.json").read_text())
    assert config["semi_supervised"] is True and config["classifier_weight"] == 50.0
    out = subprocess.run([sys.executable, "-m", "cvae.cli", "eval", str(folder), "--limit", "500",
                          "--iwae-images", "20", "-k", "2", "--samples-per-class", "10", "-o",
                          str(tmp_path / "eval.json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "classified by the model's classifier" in out.stdout
    accuracy = json.loads((tmp_path / "eval.json").read_text())["classifier_accuracy"]
    assert 0.3 < accuracy <= 1  # 30 labels and 970 unlabelled digits, 2 epochs: well above chance

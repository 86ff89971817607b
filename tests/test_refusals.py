"""Every row of the refused-inputs table in the docs is triggered here (or in the test that
names it), and the error is the one the table shows."""

import json
from pathlib import Path

import pytest
import torch
from folders import make_image_folder
from hf_fixtures import image_dataset
from refusals import PAGE, assert_refused, documented
from safetensors.torch import load_file

import cvae
import cvae.evaluation.classifier
from cvae import ConditionalVAE, Trainer, vae_loss
from cvae.data import as_dataset, to_tensors
from cvae.evaluation import evaluate
from cvae.evaluation.bayes import class_log_posterior
from cvae.evaluation.metrics import frechet_distance, iwae_bound
from cvae.hub._safetensors import save_tensors
from cvae.models.backbones import MLPDecoder, MLPEncoder

MNIST_MLP = cvae.hub.BUNDLED_DIR / "mnist-mlp"


def images(n=8, shape=(1, 28, 28)):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


def labels(n=8, value=0):
    return torch.full((n,), value, dtype=torch.long)


def train(data, **kwargs):
    """Train a new model on `data`; when refused, check that no weight had changed."""
    model = ConditionalVAE()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        Trainer(model, data, verbose=False, **kwargs).train()
    finally:
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def nan_images():
    x = images()
    x[3, 0, 5, 5] = float("nan")
    return x


def folder(tmp: Path, config: dict | str | None = None, weights: bytes | dict | None = None) -> Path:
    """A model folder: the bundled model's files, with `config` or `weights` replaced."""
    tmp.mkdir(exist_ok=True)
    base = json.loads((MNIST_MLP / "config.json").read_text())
    if config is not False:
        text = config if isinstance(config, str) else json.dumps({**base, **(config or {})})
        (tmp / "config.json").write_text(text)
    if isinstance(weights, dict):  # with a checksum, as every file of the config's format has
        save_tensors(weights, tmp / "model.safetensors")
    elif weights is not False:
        data = (MNIST_MLP / "model.safetensors").read_bytes()
        (tmp / "model.safetensors").write_bytes(data if weights is None else weights)
    return tmp


def checkpoint_of_another_model(tmp: Path):
    data = (images(), labels())
    Trainer(ConditionalVAE(), data, epochs=1, checkpoint_dir=tmp, verbose=False).train()
    Trainer(ConditionalVAE(latent_dim=3), data, checkpoint_dir=tmp, resume=True, verbose=False)


def mixed_sizes(tmp: Path) -> Path:
    make_image_folder(tmp / "a", classes=1, per_class=2, size=(8, 8))
    make_image_folder(tmp / "b", classes=1, per_class=2, size=(9, 9))
    (tmp / "b" / "class-0").rename(tmp / "a" / "class-1")
    return tmp / "a"


def hf_pixels():
    """A Hugging Face dataset that keeps its images as nested lists, with no Image feature."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    return Dataset.from_dict({"pixels": [[0.5] * 4] * 2, "label": [0, 1]}, features=Features(
        {"pixels": Sequence(Value("float32")), "label": ClassLabel(names=["a", "b"])}))


def two_label_columns():
    from datasets import ClassLabel

    return image_dataset(4, coarse_label=(ClassLabel(names=["x", "y"]), [0, 1, 0, 1]))


def dataset_dict(*splits: str):
    from datasets import DatasetDict

    return DatasetDict({split: image_dataset(4) for split in splits})


def saved_splits(tmp: Path) -> Path:
    dataset_dict("first", "second").save_to_disk(str(tmp / "saved"))
    return tmp / "saved"


def weights_with(**changes) -> dict:
    """The bundled MLP's weights with some tensors replaced."""
    state = load_file(MNIST_MLP / "model.safetensors")
    return {**state, **{name.replace("__", "."): fn(state[name.replace("__", ".")])
                        for name, fn in changes.items()}}


def with_nan(t):
    t = t.clone()
    t[3] = float("nan")
    return t


def flipped(tmp: Path) -> Path:
    ConditionalVAE(latent_dim=3, backbone_kwargs={"hidden_dims": [8]}).save_pretrained(tmp)
    data = bytearray((tmp / "model.safetensors").read_bytes())
    data[-10] ^= 0x01  # one bit of one weight
    (tmp / "model.safetensors").write_bytes(bytes(data))
    return tmp


def trained_into(tmp: Path, **kwargs):
    data = (images(), labels())
    Trainer(ConditionalVAE(), data, epochs=1, checkpoint_dir=tmp, verbose=False).train()
    return Trainer(ConditionalVAE(), data, epochs=2, checkpoint_dir=tmp, verbose=False, **kwargs)


def all_damaged(tmp: Path):
    data = (images(), labels())
    Trainer(ConditionalVAE(), data, epochs=1, checkpoint_dir=tmp, verbose=False).train()
    state = tmp / "epoch-0001" / "state.safetensors"
    data_bytes = bytearray(state.read_bytes())
    data_bytes[-5] ^= 0xFF
    state.write_bytes(bytes(data_bytes))
    Trainer(ConditionalVAE(), (images(), labels()), epochs=2, checkpoint_dir=tmp, resume=True,
            verbose=False)


def locked(tmp: Path, act):
    """`act(tmp)` while this process holds the folder's lock, as another writer would."""
    from cvae._files import folder_lock

    with folder_lock(tmp):
        act(tmp)


def save_while_locked(tmp: Path):
    wait, cvae.hub._pretrained.SAVE_WAIT = cvae.hub._pretrained.SAVE_WAIT, 0.2
    try:
        locked(tmp, lambda t: ConditionalVAE().save_pretrained(t))
    finally:
        cvae.hub._pretrained.SAVE_WAIT = wait


class BadItemAt40(torch.utils.data.Dataset):
    """A data set read item by item, whose item 40 has a label outside the classes."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return torch.full((1, 28, 28), 0.5), 10 if i == 40 else 0


def push_unreachable(tmp: Path):
    import huggingface_hub.constants as constants

    saved = constants.HF_HUB_OFFLINE, constants.ENDPOINT
    constants.HF_HUB_OFFLINE, constants.ENDPOINT = False, "http://127.0.0.1:9"  # nothing there
    try:
        ConditionalVAE(latent_dim=2, backbone_kwargs={"hidden_dims": [4]}).push_to_hub("org/model")
    finally:
        constants.HF_HUB_OFFLINE, constants.ENDPOINT = saved


def huge_config(tmp: Path) -> Path:
    folder(tmp)
    with open(tmp / "config.json", "ab") as f:  # sparse: costs no disk
        f.truncate(65 * 2**20)
    return tmp


def typo(tmp: Path) -> Path:
    (tmp / "runs" / "fm-cli").mkdir(parents=True)
    return tmp / "runs" / "fm-clii"


def a_file(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "file").write_text("not a folder")
    return tmp / "file"


def named():
    return ConditionalVAE(num_classes=2, class_names=["cat", "dog"])


CASES = {
    # the model and its backbone
    "image-shape": lambda tmp: ConditionalVAE(image_shape=(1, 0, 28)),
    "num-classes": lambda tmp: ConditionalVAE(num_classes=0),
    "latent-dim": lambda tmp: ConditionalVAE(latent_dim=-2),
    "class-names": lambda tmp: ConditionalVAE(num_classes=2, class_names=["cat", "cat"]),
    "backbone-unknown": lambda tmp: ConditionalVAE(backbone="resnet"),
    "backbone-setting": lambda tmp: ConditionalVAE(backbone_kwargs={"depth": 3}),
    "likelihood": lambda tmp: ConditionalVAE(likelihood="poisson"),
    "likelihood-not-class": lambda tmp: cvae.register_likelihood("linear", torch.nn.Linear),
    "likelihood-taken": lambda tmp: cvae.register_likelihood("gaussian", cvae.models.likelihoods.Gaussian),
    "modules-half": lambda tmp: ConditionalVAE(encoder=MLPEncoder((1, 28, 28), 10, 20)),
    "save-modules": lambda tmp: ConditionalVAE(encoder=MLPEncoder((1, 28, 28), 10, 20),
                                               decoder=MLPDecoder((1, 28, 28), 10, 20)
                                               ).save_pretrained(tmp),
    "conv-channels": lambda tmp: ConditionalVAE(backbone="conv", backbone_kwargs={"channels": []}),
    "conv-extra-convs": lambda tmp: ConditionalVAE(backbone="conv",
                                                   backbone_kwargs={"extra_convs": -1}),
    "conv-film": lambda tmp: ConditionalVAE(backbone="conv", backbone_kwargs={"film": 1}),
    "hidden-dims": lambda tmp: ConditionalVAE(backbone_kwargs={"hidden_dims": []}),
    "backbone-taken": lambda tmp: cvae.register_backbone("mlp", torch.nn.Linear, torch.nn.Linear),
    "backbone-not-module": lambda tmp: cvae.register_backbone("mine", int, torch.nn.Linear),
    # encode, decode and sample
    "encode-images": lambda tmp: ConditionalVAE().encode(images(2, (1, 32, 32)), labels(2)),
    "encode-images-channels-last": lambda tmp: ConditionalVAE().encode(torch.rand(2, 28, 28, 1), labels(2)),
    "encode-labels": lambda tmp: ConditionalVAE().encode(images(2), labels(3)),
    "decode-latent": lambda tmp: ConditionalVAE().decode(torch.zeros(2, 5), labels(2)),
    "label-outside": lambda tmp: ConditionalVAE().sample(10),
    "label-type": lambda tmp: ConditionalVAE().sample(7.0),
    "label-tensor-type": lambda tmp: ConditionalVAE().sample(torch.tensor([1.0])),
    "label-tensor-shape": lambda tmp: ConditionalVAE().sample(torch.zeros(2, 2, dtype=torch.long)),
    "label-name-unknown": lambda tmp: named().sample("bird"),
    "label-name-near": lambda tmp: named().sample("Dogs"),
    "label-name-no-names": lambda tmp: ConditionalVAE().sample("seven"),
    "n-type": lambda tmp: ConditionalVAE().sample(7, 2.5),
    "n-small": lambda tmp: ConditionalVAE().sample(7, 0),
    "temperature": lambda tmp: ConditionalVAE().sample(7, 2, temperature=-1.0),
    "digit-type": lambda tmp: cvae.sample("7", 4),
    "digit-outside": lambda tmp: cvae.sample(10, 4),
    "interpolate-images": lambda tmp: ConditionalVAE().interpolate(images(3), labels(3)),
    "interpolate-steps": lambda tmp: ConditionalVAE().interpolate(images(2), labels(2), steps=1),
    "interpolate-method": lambda tmp: ConditionalVAE().interpolate(images(2), labels(2), method="cubic"),
    "image-file-missing": lambda tmp: cvae.data.load_images(["nothing.png"], (1, 28, 28)),
    "image-file-channels": lambda tmp: cvae.data.load_images([], (2, 28, 28)),
    "export-part": lambda tmp: ConditionalVAE().export_onnx(tmp / "x.onnx", part="prior"),
    "grid-shape": lambda tmp: cvae.make_grid(torch.rand(1, 28, 28)),
    # the loss
    "loss-shapes": lambda tmp: vae_loss(images(2), images(3), torch.zeros(2, 4), torch.zeros(2, 4)),
    "loss-posterior": lambda tmp: vae_loss(images(2), images(2), torch.zeros(2, 4), torch.zeros(2, 3)),
    "loss-reduction": lambda tmp: vae_loss(images(2), images(2), torch.zeros(2, 4), torch.zeros(2, 4),
                                           reduction="avg"),
    "loss-learned-parameters": lambda tmp: vae_loss(images(2), images(2), torch.zeros(2, 4),
                                                    torch.zeros(2, 4), likelihood="gaussian"),
    # training data and settings
    "train-empty": lambda tmp: train((images(0), labels(0))),
    "train-image-shape": lambda tmp: train((images(8, (1, 32, 32)), labels())),
    "train-image-dtype": lambda tmp: train(((images() * 255).to(torch.uint8), labels())),
    "train-image-nan": lambda tmp: train((nan_images(), labels())),
    "train-image-range": lambda tmp: train((images() * 255, labels())),
    "train-labels": lambda tmp: train((images(), labels(value=10))),
    "train-settings": lambda tmp: train((images(), labels()), epochs=-1),
    "lr-schedule": lambda tmp: train((images(), labels()), lr_schedule="linear"),
    "mixed-precision": lambda tmp: train((images(), labels()), mixed_precision="bf16"),
    "compile-setting": lambda tmp: train((images(), labels()), compile="yes"),
    "resume-no-folder": lambda tmp: train((images(), labels()), resume=True),
    "resume-other-model": checkpoint_of_another_model,
    "data-pair": lambda tmp: as_dataset((images(), labels(), labels())),
    "data-images-shape": lambda tmp: cvae.LabelledImages(torch.rand(8, 28, 28), labels()),
    "data-labels-shape": lambda tmp: cvae.LabelledImages(images(), labels(7)),
    "data-not-tensors": lambda tmp: to_tensors([([0.5] * 4, 1)]),
    "dataset-unknown": lambda tmp: cvae.load_dataset("cifar100"),
    "dataset-loader": lambda tmp: cvae.register_dataset("mine", "mnist.npz"),
    "folder-no-classes": lambda tmp: cvae.load_dataset(str(folder(tmp, None, None))),
    "folder-sizes": lambda tmp: cvae.data.load_image_folder(mixed_sizes(tmp)),
    "dataset-missing": lambda tmp: cvae.load_dataset("mnist", root=tmp, download=False),
    "channels-value": lambda tmp: cvae.data.load_image_folder(make_image_folder(tmp), channels=2),
    "split-fraction": lambda tmp: cvae.train_test_split((images(), labels()), test_fraction=1.5),
    "split-too-small": lambda tmp: cvae.train_test_split((images(3), torch.arange(3))),
    "from-data-empty": lambda tmp: ConditionalVAE.from_data((images(0), labels(0))),
    "revision-not-hf": lambda tmp: cvae.load_dataset("mnist", revision="v1"),
    "hf-no-image-column": lambda tmp: as_dataset(hf_pixels()),
    "hf-label-columns": lambda tmp: as_dataset(two_label_columns()),
    "hf-unlabelled": lambda tmp: as_dataset(image_dataset(8).map(
        lambda row, i: {"label": -1 if i == 3 else row["label"]}, with_indices=True)),
    "hf-splits": lambda tmp: as_dataset(dataset_dict("train", "test")),
    "hf-streaming": lambda tmp: as_dataset(image_dataset(4).to_iterable_dataset()),
    "hf-no-train-split": lambda tmp: cvae.load_dataset("hf:" + str(saved_splits(tmp))),
    "hf-missing": lambda tmp: cvae.load_dataset("hf:org/no-such-data"),
    # model folders and files
    "folder-empty": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, False, False)),
    "config-not-json": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, "{latent_dim: 20")),
    "config-format": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, {"format_version": 9})),
    "config-setting": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, {"depth": 3})),
    "weights-missing": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, None, False)),
    "weights-corrupt": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, None, b"\x00" * 64)),
    "weights-shape": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, {"latent_dim": 5})),
    "weights-names": lambda tmp: ConditionalVAE.from_pretrained(
        folder(tmp, None, {"encoder.w": torch.zeros(1)})),
    "hub-offline": lambda tmp: ConditionalVAE.from_pretrained("org/never-loaded", cache_dir=tmp),
    "hidden-dims-type": lambda tmp: ConditionalVAE(backbone_kwargs={"hidden_dims": [400.5]}),
    "conv-hidden-dim": lambda tmp: ConditionalVAE(backbone="conv", backbone_kwargs={"hidden_dim": 0}),
    "backbone-kwargs-type": lambda tmp: ConditionalVAE(backbone_kwargs=[400]),
    "class-names-type": lambda tmp: ConditionalVAE(num_classes=3, class_names="abc"),
    "sample-memory": lambda tmp: ConditionalVAE().sample(3, 10**9),
    "model-memory": lambda tmp: ConditionalVAE(image_shape=(3, 30000, 40000)),  # 10 TiB of weights
    "grid-size": lambda tmp: cvae.save_grid(images(16), tmp / "x.png", scale=100000),
    "grid-nrow": lambda tmp: cvae.make_grid(images(4), nrow=-1),
    "image-channels": lambda tmp: cvae.save_grid(images(4, (2, 28, 28)), tmp / "x.png"),
    "image-extension": lambda tmp: cvae.save_grid(images(4), tmp / "samples"),
    "interpolate-z": lambda tmp: ConditionalVAE().interpolate_classes(1, 2, z=torch.zeros(5)),
    "data-type": lambda tmp: train("mnist"),
    "grid-scale": lambda tmp: cvae.save_grid(images(16), tmp / "x.png", scale=0),
    "device-missing": lambda tmp: ConditionalVAE.from_pretrained("mnist-mlp", map_location="cuda:7"),
    "device-unknown": lambda tmp: train((images(), labels()), device="tpu"),
    "config-huge": lambda tmp: ConditionalVAE.from_pretrained(huge_config(tmp)),
    "train-lr": lambda tmp: train((images(), labels()), lr=0),
    "train-beta": lambda tmp: train((images(), labels()), beta=-1),
    "train-checkpoint-every": lambda tmp: train((images(), labels()), checkpoint_every=0),
    "train-stream-labels": lambda tmp: train(BadItemAt40(), in_memory=False, batch_size=64),
    "checkpoint-folder-used": lambda tmp: trained_into(tmp),
    "checkpoint-folder-locked": lambda tmp: locked(tmp, lambda t: train((images(), labels()),
                                                                        checkpoint_dir=t)),
    "checkpoint-folder-unwritable": lambda tmp: train((images(), labels()),
                                                      checkpoint_dir=a_file(tmp) / "ck"),
    "resume-other-settings": lambda tmp: trained_into(tmp, lr=2e-3, resume=True),
    "resume-all-damaged": all_damaged,
    "labels-fractional": lambda tmp: cvae.LabelledImages(images(), torch.full((8,), 2.7)),
    "labels-bool": lambda tmp: cvae.LabelledImages(images(), torch.ones(8, dtype=torch.bool)),
    "config-bomb": lambda tmp: ConditionalVAE.from_pretrained(
        folder(tmp, {"backbone_kwargs": {"hidden_dims": [1000000]}})),
    "config-type": lambda tmp: ConditionalVAE.from_pretrained(folder(tmp, {"latent_dim": 28.9})),
    "weights-dtype": lambda tmp: ConditionalVAE.from_pretrained(
        folder(tmp, None, weights_with(encoder__hidden__0__weight=lambda t: t.to(torch.int8)))),
    "weights-nan": lambda tmp: ConditionalVAE.from_pretrained(
        folder(tmp, None, weights_with(decoder__net__2__bias=with_nan))),
    "weights-checksum": lambda tmp: ConditionalVAE.from_pretrained(flipped(tmp)),
    "save-onto-file": lambda tmp: ConditionalVAE().save_pretrained(a_file(tmp)),
    "save-locked": save_while_locked,
    "save-extra-name": lambda tmp: ConditionalVAE().save_pretrained(
        tmp, extra_files={"../notes.txt": "outside"}),
    "name-empty": lambda tmp: ConditionalVAE.from_pretrained(""),
    "name-no-folder": lambda tmp: ConditionalVAE.from_pretrained(str(typo(tmp))),
    "name-near-bundled": lambda tmp: ConditionalVAE.from_pretrained("mnist-cnov"),
    "name-invalid": lambda tmp: ConditionalVAE.from_pretrained("no such model " * 1000),
    "push-unreachable": push_unreachable,
    # evaluation
    "iwae-k": lambda tmp: iwae_bound(ConditionalVAE(), (images(), labels()), k=0),
    "iwae-images": lambda tmp: evaluate(ConditionalVAE(), (images(), labels()), iwae_images=0),
    "frechet-features": lambda tmp: frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4)),
    "bayes-prior": lambda tmp: class_log_posterior(ConditionalVAE(), images(), class_prior=[1, 2]),
    "bayes-k": lambda tmp: class_log_posterior(ConditionalVAE(), images(), k=0),
    "bayes-images": lambda tmp: class_log_posterior(ConditionalVAE(), images(0)),
    "classifier-unknown": lambda tmp: cvae.evaluation.classifier.load_classifier("imagenet"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_as_documented(case, tmp_path):
    with pytest.raises(Exception) as caught:
        CASES[case](tmp_path / "work")
    assert_refused(case, caught.value)


def test_every_row_has_a_test():
    """Rows not triggered here are checked with assert_refused by a test in another file,
    which names the case as a string (the rows that need a Hub server or torchrun)."""
    others = [p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p != Path(__file__)]
    elsewhere = {case for case in documented()
                 if any(f'"{case}"' in text and "assert_refused(" in text for text in others)}
    untested = set(documented()) - set(CASES) - elsewhere
    assert not untested, f"rows of {PAGE.name} with no test: {sorted(untested)}"
    assert not set(CASES) - set(documented()), "cases missing from the table"

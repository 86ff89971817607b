import pytest
import torch
from folders import make_image_folder
from torchvision import datasets, transforms

import cvae
from cvae.data import data_root, to_tensors


def test_mnist_loads_from_the_data_setting(mnist_train, mnist_test):
    assert mnist_train.images.shape == (60000, 1, 28, 28)
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert mnist_train.images.dtype == torch.float32
    counts = torch.bincount(mnist_train.labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist_train.class_names == [str(d) for d in range(10)]


def test_in_memory_images_equal_torchvision_to_tensor(mnist_test):
    reference = datasets.MNIST(str(data_root()), train=False, transform=transforms.ToTensor())
    for i in (0, 1, 9999):
        image, label = reference[i]
        assert torch.equal(mnist_test.images[i], image)
        assert mnist_test.labels[i].item() == label
    read = to_tensors(torch.utils.data.Subset(reference, range(300)))
    assert torch.equal(read.images, mnist_test.images[:300])
    assert torch.equal(read.labels, mnist_test.labels[:300])


def test_fashion_mnist_has_class_names():
    ds = cvae.load_dataset("fashion-mnist", train=False, download=False)
    assert ds.class_names[7] == "Sneaker" and len(ds) == 10000


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST.*CVAE_DATA"):
        cvae.load_dataset("mnist", root=tmp_path, download=False)


def test_data_root_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("/elsewhere") != tmp_path
    monkeypatch.delenv("CVAE_DATA")
    assert data_root().name == "data" and ".cache" in data_root().parts


def test_unknown_dataset_and_bad_tensors():
    with pytest.raises(ValueError, match="registered"):
        cvae.load_dataset("imagenet-22k")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        cvae.LabelledImages(torch.rand(4, 28, 28), torch.zeros(4))
    with pytest.raises(ValueError, match="labels"):
        cvae.LabelledImages(torch.rand(4, 1, 28, 28), torch.zeros(3))


def test_an_image_folder_loads_as_torchvision_image_folder_reads_it(tmp_path):
    folder = make_image_folder(tmp_path / "pets")
    data = cvae.data.load_image_folder(folder)
    assert data.images.shape == (30, 3, 32, 32) and data.class_names == [f"class-{c}" for c in range(5)]
    reference = datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    for i in (0, 7, 29):
        assert torch.equal(data.images[i], reference[i][0]) and data.labels[i] == reference[i][1]
    grey = cvae.data.load_image_folder(folder, image_size=(16, 12), channels=1)
    assert grey.images.shape == (30, 1, 16, 12)


def test_an_image_folder_of_mixed_sizes_asks_for_image_size(tmp_path):
    folder = make_image_folder(tmp_path / "a", classes=2, size=(8, 8))
    make_image_folder(tmp_path / "b", classes=1, size=(9, 9))
    (tmp_path / "b" / "class-0").rename(folder / "class-2")
    with pytest.raises(ValueError, match="image_size"):
        cvae.data.load_image_folder(folder)
    assert cvae.data.load_image_folder(folder, image_size=(8, 8)).images.shape[1:] == (3, 8, 8)


def test_numpy_arrays_train_like_tensors():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(32, 1, 6, 6, generator=g).numpy(), torch.randint(0, 3, (32,)).numpy()
    model = cvae.ConditionalVAE((1, 6, 6), 3, 2)
    history = cvae.Trainer(model, (images, labels), epochs=1, batch_size=8, verbose=False).train()
    assert len(history) == 1


def test_uint8_array_datasets_convert_like_to_tensor():
    """KMNIST keeps a (N, H, W) uint8 tensor, CIFAR10 a (N, H, W, C) numpy array."""
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    cifar_like = type("DS", (), {"data": pixels, "targets": [0, 1, 2, 1], "classes": list("abc")})
    data = cvae.data._named._as_images(cifar_like, None, "train")
    assert data.images.shape == (4, 3, 5, 6) and data.class_names == ["a", "b", "c"]
    assert torch.equal(data.images[2], transforms.ToTensor()(pixels[2]))
    emnist_like = type("DS", (), {"data": torch.as_tensor(pixels[..., 0]), "targets": torch.arange(4),
                                  "classes": list("abcd")})
    data = cvae.data._named._as_images(emnist_like, None, "test", transpose=True)
    assert torch.equal(data.images[1, 0], transforms.ToTensor()(pixels[1, ..., 0])[0].T)


def test_sampling_by_class_name_after_fashion_mnist():
    data = cvae.load_dataset("fashion-mnist", train=False)
    model = cvae.ConditionalVAE(class_names=data.class_names)
    cvae.Trainer(model, (data.images[:256], data.labels[:256]), epochs=1, verbose=False).train()
    assert model.sample("Sneaker", 8).shape == (8, 1, 28, 28)
    assert torch.equal(model.sample("Sneaker", 2, generator=torch.Generator().manual_seed(0)),
                       model.sample(7, 2, generator=torch.Generator().manual_seed(0)))


def test_a_registered_dataset_loads_by_name_and_names_its_classifier(tmp_path, capsys):
    from cvae.cli import main
    from cvae.data import get_dataset

    def load(root, train, download):
        g = torch.Generator().manual_seed(0 if train else 1)
        return cvae.LabelledImages(torch.rand(64, 1, 28, 28, generator=g),
                                   torch.arange(64) % 2, ["even", "odd"])

    cvae.register_dataset("Parity_Noise", load, classifier="mnist-cnn")
    try:
        assert "parity-noise" in cvae.list_datasets()
        assert cvae.load_dataset("parity-noise", train=False).class_names == ["even", "odd"]
        assert get_dataset("parity-noise").classifier == "mnist-cnn"
        with pytest.raises(ValueError, match="already registered"):
            cvae.register_dataset("parity-noise", load)
        assert main(["list"]) == 0 and "parity-noise" in capsys.readouterr().out
        assert main(["train", "--dataset", "parity-noise", "--epochs", "1", "--hidden-dims", "8",
                     "-o", str(tmp_path / "run"), "--no-progress"]) == 0
        assert "Test set loss" in capsys.readouterr().out
        # the dataset names its classifier, so cvae eval measures the samples with it
        assert main(["eval", str(tmp_path / "run"), "--dataset", "parity-noise", "-k", "2",
                     "--samples-per-class", "4", "-o", str(tmp_path / "e.json")]) == 0
        out = capsys.readouterr().out
        assert "samples classified as asked" in out and "of parity-noise, test split" in out
    finally:
        cvae.data._named._REGISTRY._items.pop("parity-noise")


def test_a_folder_is_a_dataset_without_a_test_split(tmp_path):
    from cvae.data import get_dataset

    folder = make_image_folder(tmp_path / "pets", classes=2, per_class=5)
    info = get_dataset(str(folder))
    assert not info.test_split and info.classifier is None
    whole = info.load(tmp_path, True, False)
    assert torch.equal(whole.images, cvae.data.load_image_folder(folder).images)
    train, test = cvae.load_dataset(str(folder)), cvae.load_dataset(str(folder), train=False)
    assert (len(train), len(test)) == (8, 2) and test.split.startswith("held-out")


def test_a_dataset_too_large_for_memory_is_refused_before_it_is_read(monkeypatch):
    from refusals import assert_refused

    from cvae import _devices as devices

    read = []

    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return 50_000

        def __getitem__(self, i):
            read.append(i)
            return torch.rand(3, 64, 64), 0

    monkeypatch.setattr(devices, "available_bytes", lambda device: 2**30)  # 1 GiB free
    with pytest.raises(MemoryError) as err:
        to_tensors(Photos(), batch_size=8)
    assert_refused("data-memory", err.value)
    assert "50,000 images of (3, 64, 64) would need 2.3 GiB" in str(err.value)
    assert max(read) == 7  # the first batch, which says the images' shape, and no more


def test_a_torchvision_built_for_another_torch_is_named_with_the_fix(tmp_path):
    """Before, every data command failed with torchvision's own `operator torchvision::nms
    does not exist`, which names neither package (pip pairs a CPU torch with a CUDA
    torchvision where the CPU index cannot be reached)."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "cvae.cli", "train", "--dataset", "mnist", "-o",
                          str(tmp_path / "run")], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("cvae train: error: torchvision failed to load beside torch ")
    assert "(operator torchvision::nms does not exist): it was built for another torch" in out.stderr
    assert "pip install --force-reinstall torch torchvision --index-url" in out.stderr

import pytest
import torch
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
    with pytest.raises(ValueError, match="known"):
        cvae.load_dataset("imagenet-22k")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        cvae.LabelledImages(torch.rand(4, 28, 28), torch.zeros(4))
    with pytest.raises(ValueError, match="labels"):
        cvae.LabelledImages(torch.rand(4, 1, 28, 28), torch.zeros(3))

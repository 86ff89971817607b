import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import cvae
from cvae import ConditionalVAE


def test_tutorial_architecture():
    model = ConditionalVAE()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "encoder.hidden.0.weight": (400, 794),
        "encoder.mu.weight": (20, 400),
        "encoder.logvar.weight": (20, 400),
        "decoder.net.0.weight": (400, 30),
        "decoder.net.2.weight": (784, 400),
    }


def test_encode_decode_forward_shapes(tiny_model):
    x, y = torch.rand(7, 3, 8, 6), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    mu, logvar = tiny_model.encode(x, y)
    assert mu.shape == logvar.shape == (7, 4)
    images = tiny_model.decode(mu, y)
    assert images.shape == (7, 3, 8, 6)
    assert images.min() >= 0 and images.max() <= 1
    recon, mu2, logvar2 = tiny_model(x, y)
    assert recon.shape == x.shape
    torch.testing.assert_close(mu2, mu)
    logits, _, _ = tiny_model(x, y, return_logits=True)
    assert logits.min() < 0 < logits.max()  # logits, not probabilities


def test_label_conditions_the_decoder(tiny_model):
    z = torch.randn(1, 4)
    a = tiny_model.decode(z, torch.tensor([0]))
    b = tiny_model.decode(z, torch.tensor([1]))
    assert not torch.allclose(a, b)


def test_reparameterize_uses_mean_and_variance():
    model = ConditionalVAE()
    mu = torch.full((20000, 2), 3.0)
    logvar = torch.full((20000, 2), 2 * torch.log(torch.tensor(0.5)))
    z = model.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.full((2,), 3.0), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.full((2,), 0.5), atol=0.02, rtol=0)


def test_config_rebuilds_the_model(tiny_model):
    config = json.loads(json.dumps(tiny_model.config))  # survives JSON
    twin = ConditionalVAE(**config)
    assert twin.config == tiny_model.config
    assert {k: v.shape for k, v in twin.state_dict().items()} == {
        k: v.shape for k, v in tiny_model.state_dict().items()}


@pytest.mark.parametrize("kwargs, match", [
    ({"image_shape": (28, 28)}, "image_shape"),
    ({"num_classes": 0}, "num_classes"),
    ({"latent_dim": 2.5}, "latent_dim"),
    ({"class_names": ["a", "b"]}, "class_names"),
    ({"backbone_kwargs": {"hidden_dims": []}}, "hidden_dims"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConditionalVAE(**kwargs)


def test_unknown_backbone_names_the_fix():
    with pytest.raises(KeyError, match="register_backbone"):
        ConditionalVAE(backbone="resnet-9000")


def test_sample_shapes_range_and_reproducibility(tiny_model):
    images = tiny_model.sample(3, n=5)
    assert images.shape == (5, 3, 8, 6)
    assert images.min() >= 0 and images.max() <= 1
    both = tiny_model.sample([1, 4], n=3)
    assert both.shape == (6, 3, 8, 6)
    a = tiny_model.sample(torch.tensor([2, 2]), generator=torch.Generator().manual_seed(1))
    b = tiny_model.sample(torch.tensor([2, 2]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # new each draw
    cold = tiny_model.sample(2, n=4, temperature=0.0)
    assert torch.equal(cold[0], cold[3])  # temperature 0 decodes z = 0


def test_sample_in_batches_equals_one_batch(tiny_model):
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    whole = tiny_model.sample(1, n=50, generator=g1)
    chunked = tiny_model.sample(1, n=50, generator=g2, batch_size=7)
    torch.testing.assert_close(whole, chunked)


def test_sample_by_class_name():
    model = ConditionalVAE(num_classes=3, class_names=["cat", "dog", "fox"])
    g = torch.Generator()
    by_name = model.sample("dog", n=2, generator=g.manual_seed(0))
    by_index = model.sample(1, n=2, generator=g.manual_seed(0))
    assert torch.equal(by_name, by_index)
    with pytest.raises(ValueError, match="no class is named 'cow'; the classes are 'cat', 'dog', 'fox'"):
        model.sample("cow")


@pytest.mark.parametrize("labels, n, error, match", [
    (10, 1, ValueError, "outside this model's classes 0..9"),
    (-1, 1, ValueError, "outside"),
    (torch.tensor([3, 12]), 1, ValueError, "label 12"),
    (2.0, 1, TypeError, "ints"),
    (True, 1, TypeError, "ints"),
    (torch.tensor([1.0]), 1, TypeError, "integer"),
    ("seven", 1, ValueError, "no class_names"),
    (3, 0, ValueError, "at least 1"),
    (3, 2.0, TypeError, "n must be an int"),
])
def test_sample_refuses_bad_input(labels, n, error, match):
    with pytest.raises(error, match=match):
        ConditionalVAE().sample(labels, n)


class TinyEncoder(nn.Module):
    def __init__(self, image_shape, num_classes, latent_dim, width=8):
        super().__init__()
        self.net = nn.Linear(image_shape[0] * image_shape[1] * image_shape[2] + num_classes,
                             2 * latent_dim)

    def forward(self, x, y):
        return self.net(torch.cat([x.flatten(1), y], 1)).chunk(2, dim=1)


class TinyDecoder(nn.Module):
    def __init__(self, image_shape, num_classes, latent_dim, width=8):
        super().__init__()
        self.shape = tuple(image_shape)
        self.net = nn.Sequential(nn.Linear(latent_dim + num_classes, width), nn.ReLU(),
                                 nn.Linear(width, self.shape[0] * self.shape[1] * self.shape[2]))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], 1)).view(-1, *self.shape)


def test_custom_backbone_registers_and_builds():
    cvae.register_backbone("test-tiny", TinyEncoder, TinyDecoder, overwrite=True)
    assert "test-tiny" in cvae.list_backbones()
    model = ConditionalVAE((1, 4, 4), 2, 3, backbone="test-tiny", backbone_kwargs={"width": 5})
    assert model.decoder.net[0].out_features == 5
    assert model.sample(1, n=2).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="already registered"):
        cvae.register_backbone("test-tiny", TinyEncoder, TinyDecoder)
    with pytest.raises(TypeError, match="nn.Module"):
        cvae.register_backbone("bad", object, TinyDecoder)


def test_import_is_cheap():
    code = ("import sys, cvae; heavy = [m for m in ('torchvision', 'huggingface_hub', "
            "'matplotlib') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_is_there_when_asked_for():
    """The package imports its public names on first use; each one resolves, and no other."""
    assert sorted(cvae.__all__) == sorted(cvae._EXPORTS)
    assert all(getattr(cvae, name).__name__ == name for name in cvae.__all__)
    assert cvae.evaluation.__name__ == "cvae.evaluation"  # the layers, as attributes
    with pytest.raises(AttributeError, match="no attribute 'Trainr'"):
        cvae.Trainr  # noqa: B018


def test_backbone_settings_are_stored_with_their_defaults():
    assert ConditionalVAE().config["backbone_kwargs"] == {"hidden_dims": [400]}
    model = ConditionalVAE(backbone_kwargs={"hidden_dims": (64, 32)})
    assert model.config["backbone_kwargs"] == {"hidden_dims": [64, 32]}
    with pytest.raises(TypeError, match=r"no settings \['width'\].*hidden_dims"):
        ConditionalVAE(backbone_kwargs={"width": 3})


def test_decode_and_encode_take_label_rows_as_well_as_indices():
    torch.manual_seed(0)
    model = ConditionalVAE()
    z, y, x = torch.randn(3, 20), torch.tensor([1, 7, 4]), torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(model.decode(z, torch.eye(10)[y]), model.decode(z, y))
    torch.testing.assert_close(model.encode(x, torch.eye(10)[y]), model.encode(x, y))
    halfway = model.decode(z[:1], 0.5 * (torch.eye(10)[[1]] + torch.eye(10)[[7]]))
    assert not torch.allclose(halfway, model.decode(z[:1], y[:1]))


def test_sampling_keeps_no_autograd_graph(tiny_model):
    """Samples are plain tensors: no graph held in memory, none to detach before saving."""
    images = tiny_model.sample([0, 1], 3)
    assert not images.requires_grad and images.grad_fn is None and images.is_inference()


def test_the_flat_module_paths_of_0_1_0_still_import_with_a_deprecation_warning():
    """Users were shown `from cvae.metrics import evaluate`, `cvae.semi.partly_labelled`, ..."""
    code = ("import warnings\nwarnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    from cvae.metrics import evaluate\nexcept DeprecationWarning as w:\n"
            "    print(w)\nwarnings.simplefilter('ignore')\n"
            "from cvae.metrics import evaluate\nfrom cvae.semi import partly_labelled, UNLABELLED\n"
            "from cvae.evaluation import evaluate as new\nfrom cvae.data import partly_labelled as moved\n"
            "print(evaluate is new, partly_labelled is moved, UNLABELLED)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    warned, same = out.stdout.strip().splitlines()
    assert warned == ("cvae.metrics moved in cvae 0.2.0: import from cvae.evaluation (or from cvae);"
                      " the old path goes in the next release")
    assert same == "True True -1"


def test_from_config_rebuilds_the_architecture_and_refuses_what_it_does_not_take():
    model = ConditionalVAE(latent_dim=5, backbone_kwargs={"hidden_dims": [32, 16]})
    twin = ConditionalVAE.from_config(model.config)
    assert twin.config == model.config
    assert [p.shape for p in twin.parameters()] == [p.shape for p in model.parameters()]
    with pytest.raises(TypeError, match=r"has no settings \['width'\]"):
        ConditionalVAE.from_config({**model.config, "width": 3})

"""The convolutional backbone, backbones of your own, and a conv model trained on an image folder."""

import math
import subprocess
import sys

import pytest
import torch
from folders import make_image_folder
from torch import nn

import cvae
from cvae import ConditionalVAE
from cvae.cli import main
from cvae.models.backbones import MLPEncoder

SMALL_CONV = {"channels": [8, 16], "hidden_dim": 64}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 13, 7), (3, 1, 1), (2, 5, 33)])
def test_conv_backbone_takes_any_size_and_channel_count(shape):
    torch.manual_seed(0)
    model = cvae.ConditionalVAE(shape, 4, 6, backbone="conv", backbone_kwargs=SMALL_CONV)
    x, y = torch.rand(3, *shape), torch.tensor([0, 3, 1])
    recon, mu, logvar = model(x, y)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (3, 6)
    assert model.sample([0, 3], 2).shape == (4, *shape)
    assert model.config["backbone_kwargs"] == {**SMALL_CONV, "extra_convs": 1, "film": False}  # stored


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 13, 7)])
def test_extra_convs_sets_the_stride_1_convolutions_of_each_stage(shape):
    counts = {}
    for extra in (0, 2):
        model = cvae.ConditionalVAE(shape, 3, 4, backbone="conv",
                                    backbone_kwargs={**SMALL_CONV, "extra_convs": extra})
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        counts[extra] = sum(m.stride == (1, 1) for m in convs)
        x = torch.rand(2, *shape)
        assert model(x, torch.tensor([0, 2]))[0].shape == x.shape
    # per stage: one in the encoder and one in the decoder; the decoder's output conv
    assert counts == {0: 1, 2: 1 + 2 * 2 * len(SMALL_CONV["channels"])}


def test_the_label_changes_what_the_conv_decoder_draws():
    torch.manual_seed(0)
    model = cvae.ConditionalVAE(backbone="conv", backbone_kwargs=SMALL_CONV)
    z = torch.randn(1, 20)
    a, b = model.decode(z, torch.tensor([1])), model.decode(z, torch.tensor([2]))
    assert not torch.allclose(a, b)


def test_film_starts_as_the_plain_conv_decoder_learns_and_round_trips(tmp_path):
    shape, film_conv = (3, 12, 12), {**SMALL_CONV, "film": True}
    torch.manual_seed(0)
    plain = ConditionalVAE(shape, 3, 4, backbone="conv", backbone_kwargs=SMALL_CONV)
    film = ConditionalVAE(shape, 3, 4, backbone="conv", backbone_kwargs=film_conv)
    missing = film.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["decoder.film.bias", "decoder.film.weight"]
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert torch.equal(film.decode(z, y), plain.decode(z, y))  # the identity at the start

    data = (torch.rand(24, *shape), torch.arange(24) % 3)
    cvae.Trainer(film, data, epochs=1, batch_size=8, seed=0, verbose=False, progress=False).train()
    assert film.decoder.film.weight.abs().sum() > 0  # the code now scales the feature maps
    assert not torch.allclose(film.decode(z, y), plain.decode(z, y))
    film.save_pretrained(tmp_path / "m")
    again = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert again.config["backbone_kwargs"]["film"] is True
    assert torch.equal(again.decode(z, y), film.decode(z, y))


def test_a_conv_model_trains_on_a_five_class_rgb_folder(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", classes=5, per_class=8, size=(32, 32))
    data = cvae.load_dataset(str(folder))
    torch.manual_seed(0)
    model = cvae.ConditionalVAE((3, 32, 32), 5, 8, backbone="conv", backbone_kwargs=SMALL_CONV,
                                class_names=data.class_names)
    history = cvae.Trainer(model, data, epochs=3, batch_size=8, seed=0, verbose=False).train()
    assert history[-1]["loss"] < history[0]["loss"]
    for name in data.class_names:
        images = model.sample(name, 4)
        assert images.shape == (4, 3, 32, 32) and images.min() >= 0 and images.max() <= 1


def test_cvae_train_takes_a_folder_a_backbone_and_a_likelihood(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "shapes", classes=5, per_class=4, size=(32, 32))
    out = tmp_path / "model"
    code = main(["train", "--dataset", str(folder), "--backbone", "conv", "--backbone-kwargs",
                 '{"channels": [8, 16], "hidden_dim": 64}', "--likelihood", "continuous-bernoulli",
                 "--beta", "0.5", "--warmup-epochs", "1", "--lr-schedule", "cosine",
                 "--epochs", "2", "--batch-size", "8",
                 "--latent-dim", "4", "--no-progress", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "Held-out set loss" in capsys.readouterr().out
    model = cvae.ConditionalVAE.from_pretrained(out)
    assert model.config["backbone"] == "conv" and model.likelihood.name == "continuous-bernoulli"
    assert model.class_names == [f"class-{c}" for c in range(5)]
    images = model.sample("class-4", 3)
    assert images.shape == (3, 3, 32, 32) and 0 <= images.min() and images.max() <= 1


BACKBONE = '''
import torch, cvae
from torch import nn

class TinyEncoder(nn.Module):
    def __init__(self, image_shape, num_classes, latent_dim, width=16):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.Tanh())
        self.heads = nn.Linear(width + num_classes, 2 * latent_dim)

    def forward(self, x, y):
        return self.heads(torch.cat([self.net(x), y], 1)).chunk(2, dim=1)

class TinyDecoder(nn.Module):
    def __init__(self, image_shape, num_classes, latent_dim, width=16):
        super().__init__()
        self.shape = tuple(image_shape)
        self.net = nn.Sequential(nn.Linear(latent_dim + num_classes, width), nn.Tanh(),
                                 nn.Linear(width, self.shape[0] * self.shape[1] * self.shape[2]))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], 1)).view(-1, *self.shape)

cvae.register_backbone("tiny", TinyEncoder, TinyDecoder)
'''

SAVE = '''
import sys, torch, cvae, my_backbone
from safetensors.torch import save_file
torch.manual_seed(0)
model = cvae.ConditionalVAE((1, 6, 6), 3, 2, backbone="tiny", backbone_kwargs={"width": 12})
x, y = torch.rand(24, 1, 6, 6), torch.randint(0, 3, (24,))
cvae.Trainer(model, (x, y), epochs=2, batch_size=8, verbose=False).train()
model.save_pretrained(sys.argv[1])
save_file({"samples": model.sample([0, 1, 2], 4, generator=torch.Generator().manual_seed(1)),
           **model.state_dict()}, sys.argv[1] + "/expected.safetensors")
'''

LOAD = '''
import sys, torch, cvae
if sys.argv[2] == "import":
    import my_backbone
from safetensors.torch import load_file
model = cvae.ConditionalVAE.from_pretrained(sys.argv[1])
expected = load_file(sys.argv[1] + "/expected.safetensors")
samples = model.sample([0, 1, 2], 4, generator=torch.Generator().manual_seed(1))
assert torch.equal(samples, expected.pop("samples"))
state = model.state_dict()
assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
print("identical", type(model.encoder).__name__, model.config["backbone_kwargs"])
'''


@pytest.mark.slow  # a fresh process
def test_a_registered_backbone_round_trips_in_a_fresh_process(tmp_path):
    (tmp_path / "my_backbone.py").write_text(BACKBONE)

    def run(code, *args):
        return subprocess.run([sys.executable, "-c", code, str(tmp_path / "model"), *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    saved = run(SAVE)
    assert saved.returncode == 0, saved.stderr
    loaded = run(LOAD, "import")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "identical TinyEncoder {'width': 12}"
    missing = run(LOAD, "no-import")
    assert missing.returncode != 0
    assert "no backbone named 'tiny' is registered" in missing.stderr
    assert "cvae.register_backbone('tiny', Encoder, Decoder)" in missing.stderr


def test_encoder_and_decoder_modules_can_be_passed_directly():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(16 + 2, 2 * 3)

        def forward(self, x, y):
            return self.net(torch.cat([x.flatten(1), y], 1)).chunk(2, dim=1)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(3 + 2, 16)

        def forward(self, z, y):
            return self.net(torch.cat([z, y], 1)).view(-1, 1, 4, 4)

    torch.manual_seed(0)  # on noise the loss falls little in 3 epochs: not by luck of the order
    model = cvae.ConditionalVAE((1, 4, 4), 2, 3, encoder=Encoder(), decoder=Decoder())
    data = (torch.rand(32, 1, 4, 4), torch.randint(0, 2, (32,)))
    history = cvae.Trainer(model, data, epochs=3, batch_size=8, verbose=False, seed=0).train()
    assert history[-1]["loss"] < history[0]["loss"]
    assert model.sample(1, 5).shape == (5, 1, 4, 4)
    assert model.config["backbone"] is None


def test_the_conv_backbone_takes_as_many_stages_as_the_image_size_allows():
    def stages(side):
        model = ConditionalVAE((1, side, side), 3, 2, backbone="conv")
        return [layer.out_channels for layer in model.encoder.features[::4]], model.decoder.start[1:]

    assert stages(28) == ([32, 64, 128], (4, 4))
    assert stages(16) == ([32, 64], (4, 4))
    assert stages(8) == ([32], (4, 4))  # not strided to 1x1, as three stages would
    assert stages(4) == ([32], (2, 2))  # at least one
    model = ConditionalVAE((1, 8, 8), 3, 2, backbone="conv")
    assert model.sample(2, 3).shape == (3, 1, 8, 8)


def test_the_config_records_the_stages_so_older_small_models_load_as_they_were(tmp_path):
    """The default stages depend on the image size now; every config has always named its
    `channels`, so a model saved with three stages at 8x8 (the default before) loads so."""
    assert ConditionalVAE((1, 8, 8), 3, 2, backbone="conv").config["backbone_kwargs"]["channels"] == [32]
    torch.manual_seed(0)
    old = ConditionalVAE((1, 8, 8), 3, 2, backbone="conv", backbone_kwargs={"channels": [32, 64, 128]})
    old.save_pretrained(tmp_path / "m")
    again = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert again.config["backbone_kwargs"]["channels"] == [32, 64, 128]
    assert all(torch.equal(v, old.state_dict()[k]) for k, v in again.state_dict().items())


def test_a_model_builds_each_part_once_for_the_memory_check_draws_nothing():
    """The weights are counted on the meta device first; the real parts are built once, so
    a seed gives the weights and the random numbers after them that it always gave."""
    for semi in (False, True):
        torch.manual_seed(0)
        model = cvae.ConditionalVAE(semi_supervised=semi)
        after = torch.rand(3)
        torch.manual_seed(0)
        parts = [cvae.models.backbones.MLPEncoder((1, 28, 28), 10, 20),
                 cvae.models.backbones.MLPDecoder((1, 28, 28), 10, 20)]
        if semi:
            parts.append(cvae.models.backbones.MLPEncoder((1, 28, 28), 1, 10))
        assert torch.equal(torch.rand(3), after)
        assert torch.equal(parts[0].hidden[0].weight, model.encoder.hidden[0].weight)


def test_a_model_built_on_the_meta_device_makes_each_value_once():
    """from_pretrained builds the model on the meta device first and refuses one that makes
    far more values than its weights file holds (twice as many, plus some room). The memory
    check must not build it a second time there, which used up that room."""
    from cvae.hub._weights import _Budget

    budget = _Budget(10**12, 10**9, ValueError)
    with torch.device("meta"), budget:
        model = cvae.ConditionalVAE()
    values = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    assert 10**12 - budget.left == values


def test_from_data_starts_the_decoder_at_the_training_images_mean():
    # Started at 0, a decoder spends its first steps on the images' average colour (a model
    # of colourised digits collapsed there: experiments/colour-collapse/).
    torch.manual_seed(0)
    colours = torch.tensor([0.7, 0.2, 0.5]).view(1, 3, 1, 1)
    grey = (colours + 0.2 * torch.rand(64, 3, 12, 12), torch.arange(64) % 4)
    conv = ConditionalVAE.from_data(grey)  # Gaussian, conv: one bias a channel
    assert conv.config["likelihood"] == "gaussian" and conv.config["backbone"] == "conv"
    decoded = conv.decode(torch.zeros(64, conv.latent_dim), grey[1]).mean((0, 2, 3))
    assert torch.allclose(decoded, grey[0].mean((0, 2, 3)), atol=0.05)

    inked = torch.zeros(64, 1, 4, 4)
    inked[:, :, :, :2] = (torch.rand(64, 1, 4, 2) < 0.9).float()  # the left half inked, the right never
    mlp = ConditionalVAE.from_data((inked, torch.arange(64) % 4))  # Bernoulli, MLP: one bias a pixel
    assert mlp.config["likelihood"] == "bernoulli" and mlp.config["backbone"] == "mlp"
    decoded = mlp.decode(torch.zeros(64, mlp.latent_dim), torch.arange(64) % 4).mean(0)
    assert (decoded[:, :, :2] > 0.8).all() and (decoded[:, :, 2:] < 0.05).all()  # 0.01 at most, the clamp
    assert (decoded[:, :, 2:] > 0.002).all()


class PlainDecoder(nn.Module):  # no start_output_at
    def __init__(self, image_shape, num_classes, latent_dim, hidden_dims=(16,)):
        super().__init__()
        self.shape = tuple(image_shape)
        self.net = nn.Linear(latent_dim + num_classes, math.prod(self.shape))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], 1)).view(-1, *self.shape)


def test_a_decoder_without_start_output_at_starts_where_its_initialisation_puts_it():
    cvae.register_backbone("plain", MLPEncoder, PlainDecoder, overwrite=True)
    data = (torch.rand(8, 1, 28, 28), torch.arange(8) % 2)
    torch.manual_seed(0)
    model = ConditionalVAE.from_data(data, backbone="plain")
    torch.manual_seed(0)
    built = ConditionalVAE(num_classes=2, backbone="plain", likelihood=model.config["likelihood"])
    assert torch.equal(model.decoder.net.bias, built.decoder.net.bias)
    torch.manual_seed(0)
    started = ConditionalVAE.from_data(data, backbone="mlp")
    torch.manual_seed(0)
    built = ConditionalVAE(num_classes=2, likelihood=model.config["likelihood"])
    assert not torch.equal(started.decoder.net[-1].bias, built.decoder.net[-1].bias)  # the MLP's has it
    assert torch.equal(started.decoder.net[0].weight, built.decoder.net[0].weight)  # and nothing else moved


def test_from_data_leaves_the_decoder_of_several_conditions_where_its_initialisation_puts_it():
    # There the start cost the independence penalty its hold (tests/test_independence.py).
    from test_conditions import SMALL, tensor_data

    data = tensor_data(60)
    torch.manual_seed(0)
    model = ConditionalVAE.from_data(data, **SMALL)
    torch.manual_seed(0)
    built = ConditionalVAE(**{**model.config, "prior": "standard"})
    assert torch.equal(model.decoder.net[-1].bias, built.decoder.net[-1].bias)


def test_from_data_modulates_the_conv_decoder_of_colour_images_only():
    torch.manual_seed(0)
    labels = torch.arange(32) % 4
    colour = ConditionalVAE.from_data((torch.rand(32, 3, 12, 12), labels))
    grey = ConditionalVAE.from_data((torch.rand(32, 1, 12, 12), labels))
    chosen = ConditionalVAE.from_data((torch.rand(32, 3, 12, 12), labels), backbone="conv")
    assert colour.config["backbone"] == grey.config["backbone"] == chosen.config["backbone"] == "conv"
    assert [m.config["backbone_kwargs"]["film"] for m in (colour, grey, chosen)] == [True, False, False]
    assert colour.decoder.film is not None and grey.decoder.film is None
    trainer = cvae.Trainer(colour, (torch.rand(32, 3, 12, 12), labels), verbose=False)  # its own length
    assert "conv backbone with FiLM," in trainer.length.plan(trainer)

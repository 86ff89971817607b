import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import cvae
from cvae import ConditionalVAE
from cvae.hub import read_config
from cvae.hub._card import make_model_card
from cvae.hub._layout import FORMAT_VERSION


def test_save_and_load_round_trip_bit_for_bit(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["image_shape"] == [3, 8, 6]
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert not loaded.training
    assert loaded.config == tiny_model.config
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    g = torch.Generator()
    assert torch.equal(tiny_model.sample(2, 4, generator=g.manual_seed(0)),
                       loaded.sample(2, 4, generator=g.manual_seed(0)))


def test_model_card_has_hub_metadata(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: cvae" in card
    assert "ConditionalVAE.from_pretrained(" in card
    # an existing card is kept unless a new one is given
    (tmp_path / "README.md").write_text("my notes")
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "my notes"
    tiny_model.save_pretrained(tmp_path, model_card="new card")
    assert (tmp_path / "README.md").read_text() == "new card"


def test_load_dtype_and_device(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    loaded = ConditionalVAE.from_pretrained(tmp_path, dtype=torch.float64)
    assert loaded.encoder.mu.weight.dtype == torch.float64
    assert loaded.sample(1, n=2).dtype == torch.float64


def test_config_that_does_not_match_the_weights_names_the_tensor(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["latent_dim"] = 5
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"tensor 'encoder.mu.weight' has shape \(4, 16\)"):
        ConditionalVAE.from_pretrained(tmp_path)


def test_weights_with_missing_tensors_are_refused(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["decoder.net.0.bias"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="decoder.net.0.bias"):
        ConditionalVAE.from_pretrained(tmp_path)


def test_truncated_weights_are_refused_clearly(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        ConditionalVAE.from_pretrained(tmp_path)


def test_missing_files_are_named(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ConditionalVAE.from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        ConditionalVAE.from_pretrained(tmp_path)


def test_config_from_a_newer_format_or_with_unknown_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="upgrade cvae"):
        read_config(path)
    path.write_text(json.dumps({"latent_dim": 3, "dropout": 0.1}))
    with pytest.raises(ValueError, match="dropout"):
        read_config(path, ConditionalVAE)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_config(path)


@pytest.mark.parametrize("name, backbone", [("mnist-mlp", "mlp"), ("mnist-conv", "conv")])
def test_bundled_models_are_listed_and_load(name, backbone):
    assert name in cvae.list_pretrained()
    model = ConditionalVAE.from_pretrained(name)
    assert model.config["backbone"] == backbone and model.num_classes == 10
    assert model.class_names == [str(d) for d in range(10)]
    weights = cvae.hub.BUNDLED_DIR / name / "model.safetensors"
    assert weights.stat().st_size <= 25_000_000  # the wheel carries them


def test_hub_ids_go_through_huggingface_hub_and_fail_clearly_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = "import cvae; cvae.ConditionalVAE.from_pretrained('someone/no-such-model')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("OSError") and "offline mode" in last and "config.json" in last


@pytest.mark.parametrize("fixture", ["config-0.1.0.json", "config-unversioned.json"])
def test_stored_configs_of_earlier_formats_still_load(fixture, tmp_path):
    """Configs as cvae 0.1.0 wrote them (format 1), and bare ones with no format version and
    no backbone defaults (as huggingface_hub's PyTorchModelHubMixin would write them)."""
    (tmp_path / "config.json").write_text((Path(__file__).parent / "fixtures" / fixture).read_text())
    weights = cvae.hub.BUNDLED_DIR / "mnist-mlp" / "model.safetensors"
    (tmp_path / "model.safetensors").write_bytes(weights.read_bytes())
    model = ConditionalVAE.from_pretrained(tmp_path)
    assert model.config["backbone_kwargs"] == {"hidden_dims": [400]}
    g = torch.Generator()
    reference = ConditionalVAE.from_pretrained("mnist-mlp")
    assert torch.equal(model.sample(4, 3, generator=g.manual_seed(0)),
                       reference.sample(4, 3, generator=g.manual_seed(0)))


def test_card_metrics_go_into_the_hub_model_index(tiny_model):
    from huggingface_hub import ModelCard

    text = make_model_card(tiny_model, name="org/m", dataset="mnist", license="mit",
                           metrics={"negative ELBO (nats per image)": 95.97})
    card = ModelCard(text)
    assert card.data.library_name == "cvae" and card.data.license == "mit"
    assert card.data.datasets == ["mnist"] and "conditional-vae" in card.data.tags
    result = card.data.eval_results[0]
    assert (result.metric_type, result.metric_value, result.dataset_split) == (
        "negative-elbo-nats-per-image", 95.97, "test")
    assert 'ConditionalVAE.from_pretrained("org/m")' in text


def test_a_gaussian_model_saved_by_0_1_0_loads_bit_for_bit():
    """0.1.0 kept the Gaussian's scale as the model's `log_scale`; it is now the likelihood's
    own parameter. The fixture and its expected outputs were written by cvae 0.1.0."""
    from safetensors.torch import load_file

    folder = Path(__file__).parent / "fixtures" / "gaussian-0.1.0"
    stored = load_file(folder / "model.safetensors")
    expected = load_file(folder / "expected.safetensors")
    model = ConditionalVAE.from_pretrained(folder)
    state = model.state_dict()
    assert torch.equal(state.pop("likelihood.log_scale"), stored.pop("log_scale"))
    assert state.keys() == stored.keys() and all(torch.equal(state[k], stored[k]) for k in state)
    samples = model.sample([0, 2], 3, generator=torch.Generator().manual_seed(1), mixed_precision=False)
    # outputs to float32 rounding: a matrix product's sums may run in another order on
    # another machine or thread count
    torch.testing.assert_close(samples, expected["samples"])
    x, y = expected["x"], torch.tensor([0, 1, 2])
    mu, logvar = model.encode(x, y)
    loss = cvae.vae_loss(model.decode_logits(mu, y), x, mu, logvar, logits=True,
                         likelihood=model.likelihood)
    torch.testing.assert_close(torch.stack(list(loss)).detach(), expected["loss"])
    # saved again, it is format 2 and keeps the scale under its new name
    assert cvae.hub.FORMAT_VERSION == 2


def test_a_new_constructor_setting_is_written_once_and_round_trips(tmp_path):
    """The config is captured from the constructor: a subclass's new setting needs no more
    than its place in the signature to be saved, checked and loaded."""
    from cvae._config import register_to_config

    class Dropout(ConditionalVAE):
        @register_to_config
        def __init__(self, *args, dropout: float = 0.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.dropout = torch.nn.Dropout(dropout)

    model = Dropout(latent_dim=3, dropout=0.25, backbone_kwargs={"hidden_dims": [8]})
    assert model.config["dropout"] == 0.25 and model.config["latent_dim"] == 3
    assert "dropout" in Dropout.config_keys() and "encoder" not in Dropout.config_keys()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dropout"] == 0.25
    loaded = Dropout.from_pretrained(tmp_path)
    assert loaded.dropout.p == 0.25 and loaded.config == model.config
    with pytest.raises(ValueError, match=r"does not take: \['dropout'\]"):
        ConditionalVAE.from_pretrained(tmp_path)  # the base class has no such setting


def test_a_folder_named_like_a_bundled_model_does_not_replace_it(tmp_path, monkeypatch, caplog):
    """Before, a folder ./mnist-mlp in the working directory replaced the bundled model
    everywhere, silently; a plain folder name still loads the folder."""
    monkeypatch.chdir(tmp_path)
    mine = ConditionalVAE(latent_dim=3, backbone_kwargs={"hidden_dims": [8]})
    mine.save_pretrained("mnist-mlp")
    mine.save_pretrained("my-model")
    with caplog.at_level("WARNING"):
        bundled = ConditionalVAE.from_pretrained("mnist-mlp")
    assert bundled.latent_dim == 20 and "write ./mnist-mlp for the folder" in caplog.text
    assert ConditionalVAE.from_pretrained("./mnist-mlp").latent_dim == 3
    assert ConditionalVAE.from_pretrained("my-model").latent_dim == 3
    assert ConditionalVAE.from_pretrained(Path("mnist-mlp")).latent_dim == 3

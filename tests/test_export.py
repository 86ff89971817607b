"""ONNX export: onnxruntime gives what PyTorch gives, within 1e-5, for any batch size."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

import cvae
from cvae.cli import main


def run(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: value.numpy() for name, value in inputs.items()})


def check_decoder(model, path, batch):
    g = torch.Generator().manual_seed(batch)
    z = torch.randn(batch, model.latent_dim, generator=g)
    y = torch.randint(0, model.num_classes, (batch,), generator=g)
    (image,) = run(path, z=z, label=torch.eye(model.num_classes)[y])
    np.testing.assert_allclose(image, model.decode(z, y).detach().numpy(), atol=1e-5, rtol=0)


def test_cvae_export_writes_both_parts_of_the_bundled_model(tmp_path, mnist_test, capsys):
    assert main(["export", "mnist-mlp", "-o", str(tmp_path)]) == 0
    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    for batch in (1, 9):
        check_decoder(model, tmp_path / "decoder.onnx", batch)
    x, y = mnist_test.images[:7], mnist_test.labels[:7]
    mu, logvar = run(tmp_path / "encoder.onnx", image=x, label=torch.eye(10)[y])
    want_mu, want_logvar = model.encode(x, y)
    np.testing.assert_allclose(mu, want_mu.detach().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logvar, want_logvar.detach().numpy(), atol=1e-5, rtol=0)
    info = json.loads((tmp_path / "cvae.json").read_text())
    assert info["image_shape"] == [1, 28, 28] and info["class_names"] == [str(d) for d in range(10)]
    assert "decoder.onnx" in capsys.readouterr().out


@pytest.mark.parametrize("likelihood,film", [("continuous-bernoulli", False), ("gaussian", False),
                                             ("gaussian", True)])
def test_a_conv_decoder_exports_with_its_likelihoods_mean(tmp_path, likelihood, film):
    torch.manual_seed(0)
    model = cvae.ConditionalVAE((3, 13, 10), 4, 6, backbone="conv", likelihood=likelihood,
                                backbone_kwargs={"channels": [8, 16], "hidden_dim": 32, "film": film}).eval()
    if film:  # started at the identity, where a graph without it would give the same images
        torch.nn.init.normal_(model.decoder.film.weight, std=0.3)
    path = model.export_onnx(tmp_path / "decoder.onnx")
    assert model.training is False and model.device.type == "cpu"
    for batch in (1, 5):
        check_decoder(model, path, batch)


@pytest.mark.parametrize("centred", [False, True])
def test_a_model_with_several_conditions_exports_taking_its_condition_rows(tmp_path, centred):
    torch.manual_seed(0)
    parts = [{"name": "digit", "kind": "categorical", "num_classes": 3},
             {"name": "size", "kind": "continuous", "mean": 1.0, "std": 2.0, "low": 0.0, "high": 3.0}]
    model = cvae.ConditionalVAE((1, 8, 8), latent_dim=4, conditions=parts, centre_codes=centred,
                                backbone_kwargs={"hidden_dims": [16]}).eval()
    if centred:  # both graphs carry the code shift
        seen = torch.stack([torch.randint(0, 3, (50,)).float(), 3 * torch.rand(50)], 1)
        model.centre_codes([(torch.rand(50, 1, 8, 8), seen)])
        assert model.code_shift.weight.any()
    model.export_onnx(tmp_path / "decoder.onnx")
    model.export_onnx(tmp_path / "encoder.onnx", part="encoder")
    table = torch.tensor([[0.0, 2.0], [2.0, float("nan")]])
    rows, z, x = model.condition_rows(table), torch.randn(2, 4), torch.rand(2, 1, 8, 8)
    (image,) = run(tmp_path / "decoder.onnx", z=z, label=rows)
    np.testing.assert_allclose(image, model.decode(z, table).detach().numpy(), atol=1e-5, rtol=0)
    mu, _ = run(tmp_path / "encoder.onnx", image=x, label=rows)
    np.testing.assert_allclose(mu, model.encode(x, table)[0].detach().numpy(), atol=1e-5, rtol=0)
    info = cvae.models._export.write_info(model, tmp_path / "cvae.json")
    assert [p["name"] for p in json.loads(info.read_text())["conditions"]] == ["digit", "size"]

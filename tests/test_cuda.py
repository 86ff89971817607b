"""On a machine with a CUDA GPU: the same numbers as on the CPU, and commands that run there.
Skipped elsewhere (CI has no GPU; `benchmarks/gpu.sh` runs these on one)."""

import json
import subprocess
import sys

import pytest
import torch

import cvae
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.metrics import elbo

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_cpu_generator_draws_the_same_noise_for_a_model_on_any_device(mnist_small):
    data = (mnist_small.images[:500], mnist_small.labels[:500])
    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    on_cpu = elbo(model, data, generator=torch.Generator().manual_seed(0))
    on_gpu = elbo(model.cuda(), data, generator=torch.Generator().manual_seed(0))
    assert on_gpu == pytest.approx(on_cpu, rel=1e-5)


def test_the_classifier_and_the_model_go_to_the_device_asked_for():
    classifier = load_classifier(device="cuda")
    assert all(p.device.type == "cuda" for p in classifier.parameters())
    images = cvae.ConditionalVAE.from_pretrained("mnist-conv", map_location="cuda").sample(7, 8)
    assert images.device.type == "cuda" and (classifier.predict(images) == 7).float().mean() > 0.8


def test_cvae_eval_runs_on_the_gpu(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cvae.cli", "eval", "mnist-mlp", "--device", "cuda",
                          "--limit", "500", "-k", "5", "--samples-per-class", "20",
                          "-o", str(tmp_path / "e.json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "e.json").read_text())["sample_accuracy"] > 0.8



def test_the_trainer_keeps_float32_on_a_gpu_unless_told(mnist_small):
    data = (mnist_small.images[:256], mnist_small.labels[:256])
    assert cvae.Trainer(cvae.ConditionalVAE(), data, device="cuda").mixed_precision is False
    forced = cvae.Trainer(cvae.ConditionalVAE(), data, device="cuda", mixed_precision=True)
    assert forced.mixed_precision is True

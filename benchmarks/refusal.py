"""How long a refused config bomb takes, and how much memory it costs: the checks run first.

Then the memory checks on images too large for the default MLP: a model for photos of
3000 x 4000, refused before its weights are allocated, and a training step on 32 RGB
photos of 768 x 1024 (the Trainer's check, after the model of 1.9 billion weights is
built: about 8 GB and half a minute).

Each case is a `config.json` of a few bytes whose model would be far larger than the real
weights beside it (those of the bundled `mnist-mlp`). `from_pretrained` must refuse it in
under a second with under 100 MB more peak memory; a normal load of the same folder's
model is timed beside it. Usage:

    python benchmarks/refusal.py
"""

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import machine

import cvae

CASES = {
    "hidden_dims [1000000]": {"backbone_kwargs": {"hidden_dims": [1000000]}},
    "hidden_dims [400] * 100000": {"backbone_kwargs": {"hidden_dims": [400] * 100000}},
    "hidden_dims [1] * 1000000": {"backbone_kwargs": {"hidden_dims": [1] * 1000000}},
    "latent_dim 10**8": {"latent_dim": 10**8},
    "num_classes 10**8": {"num_classes": 10**8, "class_names": None},
    "conv channels [10**6]": {"backbone": "conv", "backbone_kwargs": {"channels": [10**6]}},
    "image_shape 10**6 x 10**6": {"image_shape": [1, 10**6, 10**6]},
}


def main():
    print(f"machine: {machine()}")
    source = cvae.hub.BUNDLED_DIR / "mnist-mlp"
    base = json.loads((source / "config.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(source / "model.safetensors", folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps(base))
        start = time.perf_counter()
        cvae.ConditionalVAE.from_pretrained(folder)
        print(f"{'a normal load of mnist-mlp':30s} | {time.perf_counter() - start:7.3f} s |")
        print(f"{'config':30s} | refused in | peak memory added")
        for name, over in CASES.items():
            (folder / "config.json").write_text(json.dumps({**base, **over}))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            try:
                cvae.ConditionalVAE.from_pretrained(folder)
                outcome = "LOADED"
            except ValueError:
                outcome = "refused"
            seconds = time.perf_counter() - start
            added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
            print(f"{name:30s} | {seconds:7.3f} s | {added:6.1f} MB  {outcome}")

    memory_checks()


def memory_checks():
    start = time.perf_counter()
    try:
        cvae.ConditionalVAE(image_shape=(3, 3000, 4000))
        print("a model for 3000 x 4000 photos: BUILT")
    except MemoryError as err:
        print(f"a model for 3000 x 4000 photos: refused in {time.perf_counter() - start:.3f} s: {err}")
    model = cvae.ConditionalVAE(image_shape=(3, 768, 1024))
    print(f"a model for 768 x 1024 photos: {sum(p.numel() for p in model.parameters()):,} weights")
    data = (torch.rand(32, 3, 768, 1024), torch.arange(32) % 10)
    try:
        cvae.Trainer(model, data, verbose=False)
        print("a Trainer on 32 of them: MADE")
    except MemoryError as err:
        print(f"a Trainer on 32 of them: refused: {err}")


if __name__ == "__main__":
    main()

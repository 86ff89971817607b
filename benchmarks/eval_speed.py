"""Seconds and peak memory of `cvae eval` of the default model, as a user runs it.

Runs `cvae eval mnist-conv` in a child process (the command a user types: the IWAE bound
on 1,000 seeded test images, with its standard error, decoded in bfloat16 where the CPU
computes in it natively), then the same with `--float32` (the baseline: every pass in
float32) and, with `--full`, the whole protocol of the model card (the bound on all 10,000
test images), and prints for each the wall-clock time, the child's peak resident memory
and the bound. The floor is the FLOPs
of the bound's decoder passes (k = 100 per image, counted) at the float32
matrix-product speed measured here. Usage:

    CVAE_DATA=../shared/data python benchmarks/eval_speed.py [--full] [--device cpu]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import count_flops, data_root, machine, matmul_speed

import cvae


def run(extra, device):
    """Seconds, peak memory (bytes) and the JSON record of one `cvae eval` in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "eval.json")
        command = [sys.executable, "-m", "cvae.cli", "eval", "mnist-conv", "--device", device,
                   "-o", str(out), *extra]
        start = time.perf_counter()
        # Each run in a child of its own: the peak it reports is that child's alone.
        script = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
                  " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", script, *command], capture_output=True,
                              text=True, env={**os.environ, "CVAE_DATA": data_root()})
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr)
        return seconds, int(done.stdout.split()[-1]) * 1024, json.loads(out.read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time `cvae eval --full`")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    model = cvae.ConditionalVAE.from_pretrained("mnist-conv")
    z, y = torch.zeros(512, model.latent_dim), torch.full((512,), 7)
    per_image = count_flops(lambda: model.decode_logits(z, y)) / 512
    speed = matmul_speed(torch.float32, args.device)
    runs = [("cvae eval mnist-conv", []), ("cvae eval mnist-conv --float32", ["--float32"])]
    runs += [("cvae eval mnist-conv --full", ["--full"])] if args.full else []
    print("command | seconds | peak memory | IWAE bound (images), decoded in | floor of the"
          " bound's decoding, float32")
    for name, extra in runs:
        seconds, peak, r = run(extra, args.device)
        floor = r["iwae_images"] * r["k"] * per_image / speed
        print(f"{name} | {seconds:.1f} s | {peak / 2**30:.2f} GiB | {r['iwae']:.3f} ± "
              f"{r['iwae_se']:.2f} ({r['iwae_images']:,}), {r['iwae_precision']} | {floor:.1f} s",
              flush=True)


if __name__ == "__main__":
    main()

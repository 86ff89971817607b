"""Milliseconds per training step of the conv recipe (`mnist-conv`), against its floor.

Times, in one process, on batches of 128 MNIST training images:

- the step as it was in cvae 0.1.0: float32, `nn.Conv2d` for the decoder's last layer,
  torch's `binary_cross_entropy_with_logits`, fused Adam;
- the Trainer's step as the recipe's run takes it with the Trainer's defaults: compiled
  (`compile="auto"` compiles a run of its 67 epochs) and in bfloat16 where the CPU or GPU
  computes in it natively (`mixed_precision="auto"`), from the time of the second of two
  epochs of 100 steps (with the count of active units that follows each epoch);
- the same Trainer not compiled (`compile=False`), and in float32, not compiled;
- the floor: the FLOPs of a step (counted) at the float32 matrix-product speed measured
  here.

Usage:

    CVAE_DATA=../shared/data python benchmarks/conv_step.py [--steps 100] [--device cpu]
"""

import argparse
import json
import logging
import time

import torch
import torch.nn.functional as F
from common import count_flops, data_root, floor_line, machine, matmul_speed

import cvae

# The recipe is the bundled model's design, freshly initialised.
CONFIG = json.loads((cvae.hub.BUNDLED_DIR / "mnist-conv" / "config.json").read_text())


def model(device):
    torch.manual_seed(0)
    return cvae.ConditionalVAE(latent_dim=CONFIG["latent_dim"], backbone="conv",
                               backbone_kwargs=CONFIG["backbone_kwargs"]).to(device)


def before_ms(data, steps, device):
    """The 0.1.0 step: a plain last convolution, torch's BCE, float32."""
    m = model(device)
    plain = torch.nn.Conv2d(m.decoder.out.in_channels, 1, 3, padding=1).to(device)
    plain.load_state_dict(m.decoder.out.state_dict())
    m.decoder.out = plain
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)
    x_all, y_all = data.images.to(device), data.labels.to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for i in range(steps + 3):
        if i == 3:
            sync()
            start = time.perf_counter()
        x, y = x_all[i * 128 % len(x_all):][:128], y_all[i * 128 % len(x_all):][:128]
        mu, logvar = m.encode(x, y)
        logits = m.decode_logits(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), y)
        loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync()
    return (time.perf_counter() - start) / steps * 1000


def trainer_ms(data, steps, device, **options):
    """A step of the Trainer, from the second of two epochs of `steps` steps."""
    subset = cvae.LabelledImages(data.images[:steps * 128], data.labels[:steps * 128],
                                 data.class_names)
    trainer = cvae.Trainer(model(device), subset, epochs=2, lr_schedule="cosine", warmup_epochs=1,
                           seed=0, device=device, verbose=False, progress=False, **options)
    return trainer.train()[-1]["seconds"] / steps * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    # Two epochs of 100 steps train nothing worth warning about (a collapse, say): only time counts.
    logging.getLogger("cvae").setLevel(logging.ERROR)
    print(f"machine: {machine()}")
    data = cvae.load_dataset("mnist", data_root())
    m = model(args.device)
    x, y = data.images[:128].to(args.device), data.labels[:128].to(args.device)
    flops = count_flops(lambda: m.loss(x, y)[0].backward())
    speed = matmul_speed(torch.float32, args.device)
    floor = flops / speed * 1000
    print(f"floor of a step, float32: {floor_line(flops, speed, 's')}")
    print(f"native bfloat16 on {args.device}: {cvae._devices.native_bfloat16(args.device)}")
    rows = {"cvae 0.1.0 step (float32)": before_ms(data, args.steps, args.device),
            # Two epochs of 100 steps are too short for "auto" to compile; the recipe's run is not.
            "Trainer, default (compiled)": trainer_ms(data, args.steps, args.device, compile=True),
            "Trainer, not compiled": trainer_ms(data, args.steps, args.device, compile=False),
            "Trainer, float32, not compiled": trainer_ms(data, args.steps, args.device,
                                                         mixed_precision=False, compile=False)}
    print("step | ms | x the float32 floor | speed-up over 0.1.0")
    before = rows["cvae 0.1.0 step (float32)"]
    for name, ms in rows.items():
        print(f"{name} | {ms:.1f} | {ms / floor:.2f}x | {before / ms:.2f}x")


if __name__ == "__main__":
    main()

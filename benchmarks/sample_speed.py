"""Images per second: `model.sample(digit, n)` against the tutorial's way of generating.

The baseline is the tutorial's generation code with the same weights (the bundled
`mnist-mlp` model copied into the tutorial's model class): `z = torch.randn(n, 20)`, a
one-hot label, `model.decode(z, c)` under `torch.no_grad()`, against `mnist-mlp`'s
`sample`, each with its defaults. A last column gives `cvae.sample`, which draws with the
default bundled model (`mnist-conv`, a bigger network; `--model` names another), and the last
lines compare it,
with its default precision (bfloat16 on CPUs that compute in it natively) and in float32,
with its floor: the FLOPs of its decoder (counted) at the float32 matrix-product speed
measured here; the last line, the time of classifier-free guidance against none. Usage:

    python benchmarks/sample_speed.py [--repeats 20] [--device cuda] [--model NAME_OR_FOLDER]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import count_flops, floor_line, machine, matmul_speed
from tutorial import TutorialCVAE

import cvae
import cvae._devices
import cvae._generate


def tutorial_model(ours):
    """The tutorial's class holding the weights of `ours`, the bundled `mnist-mlp`."""
    model = TutorialCVAE()
    pairs = {"fc1": ours.encoder.hidden[0], "fc21": ours.encoder.mu, "fc22": ours.encoder.logvar,
             "fc3": ours.decoder.net[0], "fc4": ours.decoder.net[2]}
    for name, layer in pairs.items():
        getattr(model, name).load_state_dict(layer.state_dict())
    return model.eval()


def tutorial_sample(model, digit, n, device):
    with torch.no_grad():
        c = F.one_hot(torch.full((n,), digit, device=device), 10).float()
        return model.decode(torch.randn(n, 20, device=device), c).view(n, 1, 28, 28)


def rate(fn, n, repeats, device):
    """Best images per second over `repeats` calls (the least disturbed by other work)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else lambda: None
    fn()  # warm up
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return n / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="where to sample (default: cpu)")
    parser.add_argument("--model", default=cvae._generate.DEFAULT_MODEL,
                        help="the model of the last column (default: the one behind cvae.sample)")
    args = parser.parse_args()
    device = args.device
    print(f"machine: {machine()}; sampling on {device}")
    mlp = cvae.ConditionalVAE.from_pretrained("mnist-mlp", map_location=device)
    base = tutorial_model(mlp.cpu()).to(device)
    mlp.to(device)
    # the model behind cvae.sample (or --model), on the device asked for
    conv = cvae.ConditionalVAE.from_pretrained(args.model, map_location=device)
    name = args.model
    g = torch.Generator(device).manual_seed(0)
    labels = torch.tensor([1, 2, 3], device=device)
    a = base.decode(torch.zeros(3, 20, device=device), F.one_hot(labels, 10).float())
    b = mlp.decode(torch.zeros(3, 20, device=device), labels)
    assert torch.allclose(a.view(3, 1, 28, 28), b, atol=1e-5), "the models must hold the same weights"
    print(f"     n | tutorial images/s | mnist-mlp sample images/s | ratio | {name} sample images/s")
    for n in (16, 10000):
        t = rate(lambda n=n: tutorial_sample(base, 7, n, device), n, args.repeats, device)
        o = rate(lambda n=n: mlp.sample(7, n, generator=g), n, args.repeats, device)
        c = rate(lambda n=n: conv.sample(7, n, generator=g), n, args.repeats, device)
        print(f"{n:6d} | {t:17,.0f} | {o:25,.0f} | {o / t:.2f}x | {c:,.0f}")
    z, y = torch.zeros(512, conv.latent_dim, device=device), torch.full((512,), 7, device=device)
    flops = count_flops(lambda: conv.decode_logits(z, y)) / 512
    speed = matmul_speed(torch.float32, device)
    print(f"{name}'s decoder floor, float32: {floor_line(flops, speed, 'images/s')}"
          f" (decoding {conv._decode_chunk()} images at a time)")
    bf16 = cvae._devices.use_bfloat16("auto", device)
    print(f"native bfloat16 on {device}: {cvae._devices.native_bfloat16(device)} (sample's default"
          f" decodes in {'bfloat16' if bf16 else 'float32'})")
    fp32 = rate(lambda: conv.sample(7, 10000, generator=g, mixed_precision=False), 10000,
                args.repeats, device)
    for kind, r in (("default", c), ("float32", fp32)):
        print(f"cvae.sample(7, 10000) with {name}, {kind}: {r:,.0f} images/s,"
              f" {speed / flops / r:.2f}x the float32 floor's time")
    # Guidance decodes each image twice (with and without its label): its time against
    # sampling without it (mnist-conv was trained with condition dropout, which it needs).
    plain = rate(lambda: conv.sample(7, 10000, generator=g, guidance=0.0), 10000, args.repeats, device)
    pushed = rate(lambda: conv.sample(7, 10000, generator=g, guidance=2.0), 10000, args.repeats, device)
    print(f"guidance=2 with {name}: {pushed:,.0f} images/s against {plain:,.0f} without:"
          f" {plain / pushed:.2f}x the time (one more decoder pass)")


if __name__ == "__main__":
    main()

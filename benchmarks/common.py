"""What the benchmarks share: where the data are, the machine, and the hardware's floor.

The floor of a piece of work is its FLOP count (counted by `torch.utils.flop_counter`
on the real model) divided by the matrix-product speed measured here, in the same
process, on a large product: no implementation of the same arithmetic can beat it
without lower precision.
"""

import os
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def data_root() -> str:
    """$CVAE_DATA, else ../shared/data beside the repository (where CI puts it)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("CVAE_DATA") or str(default)


def _cpuinfo(key: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine() -> str:
    """The processor, its vector instructions, core count and torch build, for the record."""
    cpu = _cpuinfo("model name") or platform.processor() or platform.machine()
    flags = [f for f in _FLAGS if f in _cpuinfo("flags").split()]
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu} ({' '.join(flags) or 'no AVX2'}), {os.cpu_count()} cores,"
            f" {torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}")


def matmul_speed(dtype: torch.dtype = torch.float32, device: str = "cpu", size: int = 2048) -> float:
    """FLOP/s of a `size`-square matrix product: the best of several, after a warm-up."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    repeats = 5 if torch.device(device).type == "cpu" else 50
    best = float("inf")
    for _ in range(4):
        a @ b
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best


def count_flops(fn) -> int:
    """The FLOPs of `fn()` (matrix products and convolutions, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def floor_line(flops: float, speed: float, unit: str, per: float = 1.0) -> str:
    """A printable floor: `flops` of work at `speed` FLOP/s, as seconds (or items/s with `per`)."""
    seconds = flops / speed
    if unit == "s":
        return f"{flops / 1e9:.2f} GFLOP at {speed / 1e9:.0f} GFLOP/s: {seconds:.3f} s"
    return f"{flops / 1e9:.4f} GFLOP at {speed / 1e9:.0f} GFLOP/s: {per / seconds:,.0f} {unit}"

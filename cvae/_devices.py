"""Devices: whether the one asked for is here, and how much memory it has free.

Both are asked before the work starts, so that what cannot run is refused at once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from cvae._checks import short
from cvae._modes import in_eval_mode

__all__ = ["default_device", "check_device", "available_bytes", "check_fits", "randn",
           "native_bfloat16", "use_bfloat16", "working_bytes", "largest_activation",
           "step_bytes", "check_step_fits", "check_weights_fit"]


def default_device() -> str:
    """`"cuda"` when this machine has a CUDA GPU, else `"cpu"`.

    Where the Trainer and `cvae eval` run unless told otherwise.
    """
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a `torch.device`, if this machine has it.

    Raises:
        ValueError: If the name is not a device, or names a GPU this machine does not have.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{str(device)[:40]!r} is not a device: use 'cpu', 'cuda', 'cuda:N'"
                         f" or 'mps'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            gpus = ", ".join(f"cuda:{i}" for i in range(count)) or "none"
            raise ValueError(f"device {str(device)!r} was asked for, but this machine's CUDA GPUs"
                             f" are: {gpus}; use 'cpu' or one of them")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but this machine has no Apple GPU; use 'cpu'")
    return device


def available_bytes(device: str | torch.device) -> int | None:
    """Free memory on `device` in bytes: a GPU's free memory, or the host's available RAM.

    `None` where the system does not say (then nothing is refused on its account).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") if "SC_AVPHYS_PAGES" in os.sysconf_names \
            else os.sysconf("SC_PHYS_PAGES")
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_fits(nbytes: int, device: str | torch.device, what: str, advice: str) -> None:
    """Refuse `what` (needing `nbytes`) when it is larger than the memory free on `device`.

    Raises:
        MemoryError: Saying how much it needs, how much there is, and `advice`.
    """
    free = available_bytes(device)
    if free is not None and nbytes > free:
        raise MemoryError(f"{what} would need {nbytes / 2**30:,.1f} GiB, more than the"
                          f" {free / 2**30:,.1f} GiB free on {torch.device(device)}; {advice}")


def randn(shape: tuple[int, ...] | int, generator: torch.Generator | None,
          device: str | torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal noise for `device`, drawn on `generator`'s device when there is one.

    So a CPU generator gives the same draws whatever device the model is on.
    """
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively, so that autocast to it is faster.

    True for CUDA GPUs with bfloat16 arithmetic (Ampere and later) and for CPUs with AMX
    or AVX-512 BF16 instructions. Elsewhere torch emulates bfloat16, several times slower
    than float32 (on an AVX2-only CPU, for example).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        cpu = torch.cpu  # the instruction-set checks are private, so each is looked up with care
        return any(getattr(cpu, name, lambda: False)()
                   for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def use_bfloat16(setting: bool | str, device: str | torch.device,
                 dtype: torch.dtype = torch.float32) -> bool:
    """Resolve a `mixed_precision` setting: `True`, `False`, or `"auto"`.

    `"auto"` is bfloat16 on a CPU that computes in it natively (`native_bfloat16`), and
    float32 elsewhere: on GPUs, models of this size wait on kernel launches, and
    autocast's casts add launches (on an H200 the tutorial's recipe took 1.46 s an epoch
    in bfloat16 against 1.20 s in float32, `benchmarks/train_speed.py`). Only a float32
    model (`dtype`) runs under bfloat16 autocast; one of another dtype keeps its own.

    Raises:
        ValueError: If `setting` is none of those.
    """
    if setting == "auto":
        setting = torch.device(device).type == "cpu" and native_bfloat16(device)
    elif not isinstance(setting, bool):
        raise ValueError(f"mixed_precision must be True, False or 'auto', got {short(setting)}")
    return setting and dtype == torch.float32


def working_bytes(device: str | torch.device) -> int:
    """How much memory one chunk of batched work may hold in its largest activation.

    On a CPU, half the last-level cache (16 MiB where the system does not say): work
    that stays in the cache runs several times faster than work that streams through
    main memory, and a chunk this size still keeps the matrix units busy. On a GPU, a
    quarter of the free memory, at most 1 GiB.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return min(torch.cuda.mem_get_info(device)[0] // 4, 2**30)
    return _cpu_cache_bytes() // 2


@functools.cache  # read once: every call of `sample` asks
def _cpu_cache_bytes() -> int:
    """The largest CPU cache, from Linux's sysfs; 32 MiB where the system does not say."""
    sizes = []
    for level in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (level / "size").read_text().strip()
            sizes.append(int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]])
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return max(sizes, default=32 * 2**20)


def largest_activation(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Bytes of the largest output of any layer of `module` on `inputs` (one pass, no grad)."""
    return max((size for _, size in _outputs(module, inputs)), default=0)


def step_bytes(module: nn.Module, batch_size: int, *inputs: torch.Tensor) -> int:
    """About the memory that a training step of `module` needs beside its weights, in bytes.

    The gradients of its parameters and Adam's two moments (three times their size), and
    the outputs of its layers on `inputs` (one image) times `batch_size`: what autograd
    keeps for the backward pass. Scratch memory comes on top, so it is an estimate from
    below, for refusing what cannot fit (`check_fits`) before the first step.

    Args:
        module: The model; `module(*inputs)` runs it.
        batch_size: Images in a training batch.
        *inputs: One image's inputs, on the module's device.
    """
    weights = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    return 3 * weights + batch_size * sum(size for leaf, size in _outputs(module, inputs) if leaf)


def check_step_fits(module: nn.Module, batch_size: int, *inputs: torch.Tensor) -> None:
    """Refuse training `module` on batches of `batch_size` where a step cannot fit in memory.

    Asked before the first step, so that a model for images too large, or a batch too
    large, stops with an error that says so instead of being killed for memory.

    Args:
        module: The model; `module(*inputs)` runs it.
        batch_size: Images in a training batch.
        *inputs: One image's inputs, on the device to train on.

    Raises:
        MemoryError: If `step_bytes` is more than the memory free on that device.
    """
    check_fits(step_bytes(module, batch_size, *inputs), inputs[0].device,
               f"a training step of {batch_size} images of {tuple(inputs[0].shape[1:])}",
               "resize the images (image_size=(H, W) where they are read; cvae train --image-size"
               " H W), lower batch_size or choose a smaller backbone")


def check_weights_fit(build: Callable[[], Sequence[nn.Module]], what: str) -> None:
    """Refuse building modules whose weights the free memory cannot hold, before a byte of them.

    `build` runs once on the meta device, which allocates nothing, to count the weights;
    the caller then builds them for real. Modules that cannot be built there are not checked,
    and nor are modules built on the meta device already (as `from_pretrained` first
    builds a model, to compare it with the weights file): they take no memory.

    Args:
        build: Makes the modules (on torch's default device and dtype).
        what: What they are, in the message.

    Raises:
        MemoryError: If their weights are more than the memory free on the default device.
    """
    if torch.get_default_device().type == "meta":
        return
    try:
        with torch.device("meta"):
            weights = sum(p.numel() * p.element_size() for m in build() for p in m.parameters())
    except Exception:  # noqa: BLE001  # an operation without a meta kernel: nothing to say
        return
    check_fits(weights, torch.get_default_device(), what, "resize the images (image_size=(H, W) where"
               " they are read; cvae train --image-size H W) or choose a smaller backbone")


def _outputs(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[tuple[bool, int]]:
    """`(is a leaf layer, bytes)` of every tensor output of `module`'s layers on `inputs`."""
    found = []

    def hook(layer: nn.Module, _: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            found.append((next(layer.children(), None) is None, output.numel() * output.element_size()))

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    gpus = [t.device.index or 0 for t in inputs[:1] if t.device.type == "cuda"]
    # In eval mode, so that the probe moves no batch-norm statistics, and with the random
    # generators put back after it: a model's forward may draw noise.
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=gpus), in_eval_mode(module):
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return found

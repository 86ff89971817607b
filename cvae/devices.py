"""Devices: whether the one asked for is here, and how much memory it has free.

Both are asked before the work starts, so that what cannot run is refused at once.
"""

from __future__ import annotations

import os

import torch

__all__ = ["check_device", "available_bytes", "check_fits", "randn"]


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

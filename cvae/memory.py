"""How much memory a device has free, so that a request too big for it is refused up front."""

from __future__ import annotations

import os

import torch

__all__ = ["available_bytes", "check_fits"]


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

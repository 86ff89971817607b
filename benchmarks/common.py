"""What the benchmarks share: where the data are, and a line that names the machine."""

import os
import platform
from pathlib import Path

import torch


def data_root() -> str:
    """$CVAE_DATA, else ../shared/data beside the repository (where CI puts it)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("CVAE_DATA") or str(default)


def machine() -> str:
    """The processor, core count and torch build, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch threads{gpu}, torch {torch.__version__}"

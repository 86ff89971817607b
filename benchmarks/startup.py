"""Cold start: the `cvae` command's help and 16 sevens in a new process, against their floors.

`cvae --version` and `cvae --help` are compared with starting Python and doing nothing
(they import no torch), generating sevens with importing torch alone. Each command runs
`--repeats` times, alternating, in fresh Python processes; the medians are compared. Usage:

    python benchmarks/startup.py [--repeats 7]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import machine

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cvae --version": [sys.executable, "-m", "cvae.cli", "--version"],
    "cvae --help": [sys.executable, "-m", "cvae.cli", "--help"],
    "import torch": [sys.executable, "-c", "import torch"],
    "import cvae; cvae.sample(7, 16)": [sys.executable, "-c", "import cvae; cvae.sample(7, 16)"],
    "cvae sample --digit 7 -n 16 -o x.png": [sys.executable, "-m", "cvae.cli", "sample",
                                             "--digit", "7", "-n", "16", "-o", "x.png"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, command in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run(command, check=True, cwd=tmp, env=env, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)
    print("command                               | median s | over its floor")
    for name, values in times.items():
        floor = "python -c pass" if name.startswith("cvae --") else "import torch"
        median, base = statistics.median(values), statistics.median(times[floor])
        over = "(the floor)" if name in ("python -c pass", "import torch") else (
            f"{median - base:+.2f} s ({median / base:.2f}x {floor})")
        print(f"{name:37s} | {median:8.2f} | {over}")


if __name__ == "__main__":
    main()

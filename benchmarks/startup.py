"""Cold start: generating 16 sevens in a new process, against importing torch alone.

Each command runs `--repeats` times, alternating, in fresh Python processes; the medians
are compared. Usage:

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
    base = statistics.median(times["import torch"])
    print("command                               | median s | over import torch")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:37s} | {median:8.2f} | {median - base:+.2f} s ({median / base:.2f}x)")


if __name__ == "__main__":
    main()

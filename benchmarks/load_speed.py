"""Loading a model folder, against its floor: reading the weights file and hashing it.

Every checked load reads all of `model.safetensors` and verifies its SHA-256; that much no
loader that checks can skip. `from_pretrained` of each bundled model is timed (after one
warm-up, the median of `--repeats`) and printed beside that floor, measured in the same
process, with their ratio. Usage:

    python benchmarks/load_speed.py [--repeats 30]
"""

import argparse
import functools
import hashlib
import statistics
import time

from common import machine

import cvae
from cvae import ConditionalVAE


def median_seconds(work, repeats: int) -> float:
    work()  # warm: the first call pays for imports and the page cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_and_hash(path) -> None:
    with open(path, "rb") as f:
        hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{'model':<12} {'MB':>6} {'load ms':>9} {'floor ms':>9} {'ratio':>6}")
    for name in cvae.list_pretrained():
        weights = cvae.hub.BUNDLED_DIR / name / "model.safetensors"
        load = median_seconds(functools.partial(ConditionalVAE.from_pretrained, name), args.repeats)
        floor = median_seconds(functools.partial(read_and_hash, weights), args.repeats)
        print(f"{name:<12} {weights.stat().st_size / 1e6:>6.1f} {load * 1e3:>9.1f} {floor * 1e3:>9.1f}"
              f" {load / floor:>6.2f}")


if __name__ == "__main__":
    main()

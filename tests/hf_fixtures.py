"""Hugging Face datasets that tests make: an Image column and a ClassLabel column."""

import numpy as np


def image_dataset(n=40, names=("a", "b", "c", "d"), size=(12, 12), mode="L", seed=0, **columns):
    """`n` images of `size` (H, W); row i is class i % len(names), of brightness 50 (i % classes)."""
    from datasets import ClassLabel, Dataset, Features, Image

    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        level = 50 * (i % len(names)) + rng.integers(0, 40, size, dtype=np.uint8)
        images.append(level.astype(np.uint8) if mode == "L"
                      else np.stack([level.astype(np.uint8)] * 3, -1))
    features = {"image": Image(), "label": ClassLabel(names=list(names))}
    data = {"image": images, "label": [i % len(names) for i in range(n)]}
    for name, (feature, values) in columns.items():
        features[name], data[name] = feature, values
    return Dataset.from_dict(data, features=Features(features))

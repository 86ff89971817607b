"""The data layer: every source of labelled images, made one type, and split honestly.

Named data sets (MNIST, Fashion-MNIST, ...), folders of images, Hugging Face datasets and
tensors all become a map-style dataset of `(image, label)` (`as_dataset`, the one entry
the Trainer, the metrics and the command line call); data without a test split get a
held-out one, stratified and seeded. Nothing here knows a model.
"""

from cvae._classes import UNLABELLED
from cvae.data._folders import load_images
from cvae.data._hf import HFImages
from cvae.data._labelled import LabelledData, LabelledImages, to_tensors
from cvae.data._metadata import load_image_folder
from cvae.data._named import (
    DatasetInfo,
    data_root,
    get_dataset,
    list_datasets,
    load_dataset,
    load_splits,
    register_dataset,
)
from cvae.data._semi import partly_labelled, with_unlabelled
from cvae.data._sources import as_dataset, as_labelled
from cvae.data._splits import DEFAULT_TEST_FRACTION, VALIDATION_FRACTION, stratified_subset, train_test_split

__all__ = ["DEFAULT_TEST_FRACTION", "UNLABELLED", "DatasetInfo", "HFImages", "LabelledData", "LabelledImages",
           "as_dataset", "as_labelled", "data_root", "get_dataset", "list_datasets", "load_dataset",
           "load_image_folder", "load_images", "load_splits", "partly_labelled", "register_dataset",
           "stratified_subset", "to_tensors", "train_test_split", "VALIDATION_FRACTION", "with_unlabelled"]

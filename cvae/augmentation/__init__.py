"""The augmentation layer: labelled synthetic sets, checked before anyone trains on them.

`augment` draws a synthetic set from a conditional VAE (or trains one with the defaults),
writes it as an image folder or a Hugging Face dataset, and measures it in a `Datasheet`:
recognised, precise, varied and not copied, class by class, and whether a classifier
trained with it beats one trained on the real images only. `cvae augment` is its command.
"""

from cvae.augmentation._augment import augment
from cvae.augmentation.datasheet import Datasheet

__all__ = ["Datasheet", "augment"]

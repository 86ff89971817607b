"""The Hub layer: model folders on disk, bundled with the package, and on the Hugging Face Hub.

A model folder is `config.json`, `model.safetensors` (with a checksum) and a model card;
every write is atomic and only safetensors are ever read. `HubMixin` gives a model class
`save_pretrained`, `from_pretrained` and `push_to_hub`, and calls the hooks the class
defines (`from_config`, `_save_pretrained`): nothing here imports a model class.
"""

from cvae.hub._card import make_model_card
from cvae.hub._layout import BUNDLED_DIR, FORMAT_VERSION, list_pretrained
from cvae.hub._pretrained import (
    load_pretrained,
    local_folder,
    push_folder,
    push_to_hub,
    read_config,
    save_pretrained,
    training_record,
)
from cvae.hub.mixin import HubMixin

__all__ = ["BUNDLED_DIR", "FORMAT_VERSION", "HubMixin", "list_pretrained", "load_pretrained", "local_folder",
           "make_model_card", "push_folder", "push_to_hub", "read_config", "save_pretrained",
           "training_record"]

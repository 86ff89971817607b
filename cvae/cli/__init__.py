"""The `cvae` command: sample, train, evaluate, export and push models, and list what is bundled.

The parser (`build_parser`) states no default that the library decides: options it does
not get are left out, and the library's signatures decide. Nothing imports this layer.
"""

from cvae.cli._main import main
from cvae.cli._parser import build_parser

__all__ = ["build_parser", "main"]

"""The release: what `pip` installs (pyproject.toml reads it here) and what configs record."""

__version__ = "0.1.0"

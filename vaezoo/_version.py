"""The installed package's version, in a leaf module: any layer may import it without reaching
up to the package face (``vaezoo/__init__.py``), which imports every layer."""

from importlib.metadata import PackageNotFoundError, version as _version

__all__ = ["__version__"]

try:
    __version__ = _version("vaezoo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

"""The IPython magics (``%load_ext scnet_magic``): the class, and loading and unloading it."""

from .core import ScnetMagics, load, unload

__all__ = ["ScnetMagics", "load", "unload"]

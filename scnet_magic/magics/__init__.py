"""The IPython magics (``%load_ext scnet_magic``): the families of magics sharing one
:class:`Session`, and loading and unloading them."""

from .core import ScnetMagics, load, unload
from .session import Options, Session, Widgets

__all__ = ["Options", "ScnetMagics", "Session", "Widgets", "load", "unload"]

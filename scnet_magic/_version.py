"""The package version, in a module of its own so that every layer can read it without
importing the package's front door (``scnet_magic/__init__.py``)."""

__version__ = "0.1.0"

"""``python -m scnet_magic.sandbox``: see ``core.main``."""

from .core import main

if __name__ == "__main__":
    raise SystemExit(main())

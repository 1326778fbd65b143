"""``python -m scnet_magic.sandbox``: see ``cli``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

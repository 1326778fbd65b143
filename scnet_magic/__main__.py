"""``python -m scnet_magic``: the ``scnet`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

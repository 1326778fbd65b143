"""``python -m scnet_magic.guard``: the guard commands, and ``serve`` (the guard process)."""

import sys

from .cli import main

sys.exit(main())

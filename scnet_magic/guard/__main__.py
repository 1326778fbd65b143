"""``python -m scnet_magic.guard``: the guard process (``serve``)."""

import sys

from .process import main

sys.exit(main())

"""``python -m gpt4all_magic.bench``: the core benchmark (:mod:`gpt4all_magic.bench.core`)."""

import sys

from .core import main

sys.exit(main())

"""``python -m flowstar.cli``: the same as the ``flowstar`` command."""

import sys

from flowstar.cli import main

sys.exit(main())

"""``python -m factorlab``: see :mod:`factorlab.cli`."""
import sys

from factorlab.cli import main

sys.exit(main())

"""``python -m gradparity`` is the ``gradparity`` command."""

import sys

from gradparity.cli import main

if __name__ == "__main__":  # a process spawned to draw plots imports this module again as __mp_main__
    sys.exit(main())

"""``python -m trio_ws module:app``: the ``trio-ws`` command (see ``trio_ws._cli``)."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())

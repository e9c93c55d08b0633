"""``python -m eventhub``: the same as the ``eventhub`` command."""

import sys

from eventhub.cli import main

sys.exit(main())

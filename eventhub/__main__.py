"""``python -m eventhub``: the same as the ``eventhub`` command."""

import sys

from eventhub._cli import main

sys.exit(main())

"""``python -m downslope``: the ``downslope`` command. A Ctrl-C while the command is still being
imported ends it like a Ctrl-C later on: one line, exit status 130, no traceback."""

import sys

try:
    from downslope.cli import main
except KeyboardInterrupt:
    print("downslope: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())

"""Check a dataset before training on it (segmnv3-data check ROOT).

Its code is segmnv3/cli/data.py; --help lists the options.
"""

import sys

from segmnv3.cli.data import main

if __name__ == "__main__":
    sys.exit(main())

"""List the known weights: name, task, classes, metrics, size and whether they are cached.

Its code is segmnv3/cli/weights.py; --help lists the options.
"""

import sys

from segmnv3.cli.weights import main

if __name__ == "__main__":
    sys.exit(main())

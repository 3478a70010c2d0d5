"""Benchmark segmnv3 against torchvision's eager models, side by side in one process.

Its code is segmnv3/cli/bench.py; --help lists the options.
"""

import sys

from segmnv3.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())

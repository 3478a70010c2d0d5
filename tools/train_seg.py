"""Train a segmentation model. With no config it trains on the built-in synthetic data.

Its code is segmnv3/cli/train.py; --help lists the options.
"""

import sys

from segmnv3.cli.train import main

if __name__ == "__main__":
    sys.exit(main())

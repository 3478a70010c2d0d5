"""Evaluate a segmentation checkpoint: per-class IoU, mIoU and pixel accuracy.

Its code is segmnv3/cli/eval.py; --help lists the options.
"""

import sys

from segmnv3.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())

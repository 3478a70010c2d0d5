"""Predict masks for images: files, folders or globs in, PNGs of class ids out.

Its code is segmnv3/cli/predict.py; --help lists the options.
"""

import sys

from segmnv3.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())

"""Export a checkpoint to ONNX (checked against PyTorch), optionally with a static int8 copy.

Its code is segmnv3/cli/export.py; --help lists the options.
"""

import sys

from segmnv3.cli.export import main

if __name__ == "__main__":
    sys.exit(main())

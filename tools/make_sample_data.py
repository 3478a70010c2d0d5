"""Write a small dataset in an official layout from the synthetic generator.

Its code is segmnv3/cli/sample_data.py; --help lists the options.
"""

import sys

from segmnv3.cli.sample_data import main

if __name__ == "__main__":
    sys.exit(main())

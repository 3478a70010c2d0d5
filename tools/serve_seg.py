"""Serve a model over HTTP: an API that segments images and a web page to try it.

Its code is segmnv3/cli/serve.py; --help lists the options.
"""

import sys

from segmnv3.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.soak`: see the package's docstring (or `--help`)."""

import sys

from bench.soak.run import main

sys.exit(main())

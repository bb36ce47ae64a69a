"""`python -m jaxvssl <command> ...` runs the `jaxvssl` command line."""

import sys

from jaxvssl import cli

sys.exit(cli.main())

"""`python -m jaxvssl.main --config=configs/moco.py:tiny --workdir=/tmp/run [--config.key=value]`.

The same as `jaxvssl train`; kept because it is the shape of big_vision's entry point.
"""

import sys

from jaxvssl import cli

if __name__ == '__main__':
  sys.exit(cli.main(['train', *sys.argv[1:]]))

"""The convolution implementation does not change what is learned: tiny MoCo, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/conv_impl.py [--jobs N]

Rows: `configs/moco.py:tiny` with the default CPU convolutions of `jaxvssl/models/conv.py`
('auto') and with plain `lax.conv_general_dilated` ('xla', the code before the change; about 8x
slower per step here). Same weights in, same maths out up to float32 rounding, so the two rows
should agree within the seeds' spread. Data: synthetic_motion/default in `<repo>/data/tfds`.
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/moco.py:tiny'


def get_ablation() -> Ablation:
  return Ablation(
    name='conv_impl',
    description=(
      'Tiny MoCo (`configs/moco.py:tiny`) trained and evaluated with the CPU convolution '
      'formulations (auto) and with plain XLA convolutions (xla).'
    ),
    rows=(
      Row('auto', CONFIG, (), 'conv auto', ('JAXVSSL_CONV_IMPL=auto',)),
      Row('xla', CONFIG, (), 'conv xla', ('JAXVSSL_CONV_IMPL=xla',)),
    ),
    overrides=DATA,
    seeds=(0, 1, 2),
  )

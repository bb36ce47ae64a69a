"""Why the tiny MoCo loss rises at the end of training: the learning-rate schedule, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/moco_schedule.py [--jobs N]

Rows: `configs/moco.py:tiny` with the cosine decay to zero it had until this measurement
(docs/methods/moco.md; "cosine"), with a constant learning rate after the warm-up ("constant", its
setting since), and with a key encoder that follows the query encoder closely (momentum 0.9,
cosine). Plus the backbone at random initialisation. Data: synthetic_motion/default in `<repo>/data/tfds`.
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/moco.py:tiny'


def get_ablation() -> Ablation:
  return Ablation(
    name='moco_schedule',
    description=(
      'Tiny MoCo (`configs/moco.py:tiny`, the README demo) under three learning-rate / momentum '
      'settings: does the end-of-training loss rise come from the schedule?'
    ),
    rows=(
      Row('cosine', CONFIG, ('optim.schedule=cosine',), 'cosine decay to 0'),
      Row('constant', CONFIG, ('optim.schedule=constant',), 'constant lr'),
      Row('momentum_0.9', CONFIG, ('optim.schedule=cosine', 'moco.momentum=0.9'), 'cosine, m 0.9'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

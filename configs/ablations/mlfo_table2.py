"""MLFO Table 2 at CPU scale on synthetic_motion: what guides the lower levels, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/mlfo_table2.py [--jobs N] [--rows combined,instance]

Rows, each `configs/mlfo.py:tiny` with one change (row `combined` is the method):
  no_multi_level   "w/o": L_high only, no loss on the lower levels (`mlfo.graph_levels=()`).
  one_hot          the lower levels trained with instance discrimination (target graph = I).
  instance         target graph E_ins alone (eq. 6).
  semantic         target graph E_sem alone (eq. 7); the paper finds it below the baseline.
  combined_high    the combined graph as an extra loss on the high level only ("Combined", no
                   multi-level).
  combined         the combined graph (eq. 9) on the mid and low levels (the method).
Paper (R3D-18, UCF101 linear probe): 58.1 / 57.8 / 59.4 / 54.5 / 60.4 / 63.2.
Data: synthetic_motion/default in `<repo>/data/tfds`. Not measured yet (docs/methods/mlfo.md).
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/mlfo.py:tiny'


def get_ablation() -> Ablation:
  return Ablation(
    name='mlfo_table2',
    description=(
      'MLFO Table 2 (the constraint of the lower levels) at the tiny CPU scale on '
      'synthetic_motion/default.'
    ),
    rows=(
      Row('no_multi_level', CONFIG, ('mlfo.graph_levels=()',), 'w/o multi-level'),
      Row('one_hot', CONFIG, ('mlfo.graph_target=one_hot',), 'one-hot'),
      Row('instance', CONFIG, ('mlfo.graph_target=instance',), 'instance (E_ins)'),
      Row('semantic', CONFIG, ('mlfo.graph_target=semantic',), 'semantic (E_sem)'),
      Row('combined_high', CONFIG, ('mlfo.graph_levels=("high",)',), 'combined, high only'),
      Row('combined', CONFIG, (), 'combined, multi-level (MLFO)'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

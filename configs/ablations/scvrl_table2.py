"""SCVRL Table 2 at CPU scale on synthetic_motion: CVRL (L_V alone) vs SCVRL (L_T + L_V), seeds
0, 1, 2, plus the backbone at random initialisation.

  jaxvssl ablate configs/ablations/scvrl_table2.py [--jobs N]

The paper's Table 2 compares the linear probe on normal and on shuffled test clips: the
evaluation's shuffle sensitivity (`evaluation.shuffle_sensitivity`, on by default) reports the
accuracy lost when the test clips' frames are shuffled. Rows: `configs/scvrl.py:tiny` with
`scvrl.loss_weights=(0.0,1.0)` (CVRL: the visual contrastive loss alone) and with the defaults
(1, 1). Data: synthetic_motion/default in `<repo>/data/tfds`. Measured: docs/results/scvrl_table2.md
(docs/methods/scvrl.md, "Measured: Table 2 at the tiny scale").
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/scvrl.py:tiny'


def get_ablation() -> Ablation:
  return Ablation(
    name='scvrl_table2',
    description=(
      'SCVRL Table 2 at the tiny CPU scale on synthetic_motion/default: CVRL (L_V alone) against '
      'SCVRL (L_T + L_V), linear probe on normal and shuffled test clips (shuffle drop).'
    ),
    rows=(
      Row('cvrl', CONFIG, ('scvrl.loss_weights=(0.0,1.0)',), 'CVRL (L_V)'),
      Row('scvrl', CONFIG, (), 'SCVRL (L_T + L_V)'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

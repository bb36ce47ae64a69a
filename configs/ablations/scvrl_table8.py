"""SCVRL Table 8 at CPU scale on synthetic_motion: the design choices, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/scvrl_table8.py [--jobs N] [--rows scvrl,shared_head]

Rows, each `configs/scvrl.py:tiny` with one change from the defaults (row `scvrl`):
  uniform_sampling  Table 8a: targeted sampling off (`data.targeted_beta=Infinity`: uniform).
  shared_head       Table 8b: one projection head for L_T and L_V.
  binary            Table 8c: a binary "is it shuffled" classifier instead of L_T.
  mean_pool         Table 8d: the mean of the patch tokens instead of the CLS token.
  kt3               Table 8e: patch temporal kernel 3 (tokens straddle the 2-frame groups).
  lt_only           L_T alone (`scvrl.loss_weights=(1.0,0.0)`).
Data: synthetic_motion/default in `<repo>/data/tfds`. Not measured yet (docs/methods/scvrl.md).
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/scvrl.py:tiny'


def get_ablation() -> Ablation:
  return Ablation(
    name='scvrl_table8',
    description=(
      'SCVRL Table 8 (targeted sampling, shared head, binary shuffle objective, pooling, patch '
      'temporal kernel) at the tiny CPU scale on synthetic_motion/default.'
    ),
    rows=(
      Row('scvrl', CONFIG, (), 'SCVRL (defaults)'),
      Row('uniform_sampling', CONFIG, ('data.targeted_beta=Infinity',), 'beta = inf (8a)'),
      Row('shared_head', CONFIG, ('scvrl.shared_head=true',), 'shared head (8b)'),
      Row('binary', CONFIG, ('scvrl.shuffle_objective=binary',), 'binary shuffle (8c)'),
      Row('mean_pool', CONFIG, ('scvrl.pool=mean',), 'mean pooling (8d)'),
      Row('kt3', CONFIG, ('model.kwargs.patch_kernel=(3,7,7)',), 'patch kt 3 (8e)'),
      Row('lt_only', CONFIG, ('scvrl.loss_weights=(1.0,0.0)',), 'L_T alone'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

"""SCVRL Table 8 at CPU scale on synthetic_motion: the design choices, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/scvrl_table8.py [--jobs N] [--rows scvrl,shared_head]

Rows, each `configs/scvrl.py:tiny` with one change from the defaults (row `scvrl`):
  uniform_sampling  Table 8a: targeted sampling off (`data.targeted_beta=Infinity`: uniform).
  shared_head       Table 8b: one projection head for L_T and L_V.
  binary            Table 8c: a binary "is it shuffled" classifier instead of L_T.
  lt_only           L_T alone (`scvrl.loss_weights=(1.0,0.0)`).
  stem_kt2          Table 8e on R3D-10: the stem conv with temporal kernel 2, stride 2, so each
                    stem output reads exactly one 2-frame group (the kt=2 cube embedding), and
  stem_kt3          temporal kernel 3, stride 2: stem outputs straddle the groups' seams.
  cvrl_kt2          the paper's 8e compares each kernel with CVRL (L_V alone) at that kernel:
  cvrl_kt3          SCVRL beats CVRL only at kt=2 (UCF101 linear 75.5 vs 70.3; 72.7 vs 72.6 at 3).
  scvrl_mvit        `configs/scvrl.py:tiny_mvit`: the defaults on mvit_tiny, the reference of
  mean_pool         Table 8d: the mean of the patch tokens instead of the CLS token, and
  kt3               Table 8e: patch temporal kernel 3 (tokens straddle the 2-frame groups).
The last three need MViT; a supervised probe from random init stays at chance on mvit_tiny at
this budget (docs/methods/scvrl.md), so expect them near random init.
Data: synthetic_motion/default in `<repo>/data/tfds`. Not measured yet (docs/methods/scvrl.md).
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/scvrl.py:tiny'
MVIT = 'configs/scvrl.py:tiny_mvit'
CVRL = ('scvrl.loss_weights=(0.0,1.0)',)  # L_V alone, as row `cvrl` of scvrl_table2.py


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
      Row('lt_only', CONFIG, ('scvrl.loss_weights=(1.0,0.0)',), 'L_T alone'),
      Row('stem_kt2', CONFIG, ('model.kwargs.stem_temporal=(2,2)',), 'R3D stem kt 2 (8e)'),
      Row(
        'stem_kt3', CONFIG, ('model.kwargs.stem_temporal=(3,2)',), 'R3D stem kt 3, stride 2 (8e)'
      ),
      Row('cvrl_kt2', CONFIG, CVRL + ('model.kwargs.stem_temporal=(2,2)',), 'CVRL, R3D stem kt 2'),
      Row(
        'cvrl_kt3',
        CONFIG,
        CVRL + ('model.kwargs.stem_temporal=(3,2)',),
        'CVRL, R3D stem kt 3, stride 2',
      ),
      Row('scvrl_mvit', MVIT, (), 'SCVRL on mvit_tiny'),
      Row('mean_pool', MVIT, ('scvrl.pool=mean',), 'mvit_tiny, mean pooling (8d)'),
      Row('kt3', MVIT, ('model.kwargs.patch_kernel=(3,7,7)',), 'mvit_tiny, patch kt 3 (8e)'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

"""MLFO Table 3 at CPU scale on synthetic_motion: temporal modelling, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/mlfo_table3.py [--jobs N] [--rows ntm,ctm]

Rows, each `configs/mlfo.py:tiny` (16 frames: at 8 the high level has one timestep and shuffling
equals reversing, so temporal modelling is not ablated there):
  no_tm  "w/o TM": no L_aug and no timestamp retrieval.
  ctm    "w/ CTM", conventional temporal modelling: shuffled and reversed INPUT clips as the
         negatives of the high level (`mlfo.input_aug`), no timestamp retrieval.
  ntm    "w/ NTM", the method: feature-level shuffle / reverse through motion excitation (L_aug)
         and timestamp retrieval (L_ret) at every level.
Paper (R3D-18, UCF101 linear probe): 55.9 / 43.2 / 63.2 (input-level augmentation hurts, the
feature level helps). Data: synthetic_motion/default in `<repo>/data/tfds`. Not measured yet
(docs/methods/mlfo.md).
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row

CONFIG = 'configs/mlfo.py:tiny'
NO_TM = ('mlfo.aug_levels=()', 'mlfo.retrieval_levels=()')


def get_ablation() -> Ablation:
  return Ablation(
    name='mlfo_table3',
    description=(
      'MLFO Table 3 (no / input-level / feature-level temporal modelling) at the tiny CPU scale '
      'on synthetic_motion/default.'
    ),
    rows=(
      Row('no_tm', CONFIG, NO_TM, 'w/o TM'),
      Row('ctm', CONFIG, NO_TM + ('mlfo.input_aug=true',), 'w/ CTM (input level)'),
      Row('ntm', CONFIG, (), 'w/ NTM (feature level, MLFO)'),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )

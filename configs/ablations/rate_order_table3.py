"""rate_order Table III at CPU scale on synthetic_motion: the number of segments n, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/rate_order_table3.py [--jobs N] [--rows n2,n3]

Every row is the whole method (`configs/rate_order.py:tiny`, its generator from the
`configs/view_synthesis.py:tiny` stage of the same seed) with n = 2, 3, 4, 5 segments, all on
10-frame clips: the tiny scale's 8 frames hold at most 4 segments of >= 2 frames, and 10 is the
shortest clip that holds 5 (as the paper's 16 frames hold 5 segments of >= 3 with one frame to
spare). The embedding (60) divides by every n. Order classes: 2, 6, 24, 120.
Paper (R(2+1)D, UCF101; order acc., rate error, contrastive loss, retrieval top-1, finetune):
n=2 96.78 / 1.55 / 0.72 / 38.5 / 78.8; n=3 93.12 / 1.66 / 0.66 / 39.7 / 80.1;
n=4 89.02 / 1.88 / 0.69 / 38.1 / 79.0; n=5 84.36 / 2.23 / 0.75 / 37.7 / 78.3.
Being measured across machines with `--record results/ablations/rate_order_table3` (what
has finished is in that directory; progress in docs/methods/rate_order.md).
"""

from jaxvssl.ablate import Ablation, Row

from configs.ablations.cacl_table1 import DATA
from configs.ablations.rate_order_table6 import CONFIG, GENERATOR, VIEW_SYNTHESIS

CLIP = ('data.num_frames=10',)


def get_ablation() -> Ablation:
  return Ablation(
    name='rate_order_table3',
    description=(
      'rate_order Table III (number of segments n) at the tiny CPU scale on '
      'synthetic_motion/default: `configs/rate_order.py:tiny` on 10-frame clips with n = 2..5.'
    ),
    rows=tuple(
      Row(f'n{n}', CONFIG, CLIP + (f'rate_order.num_segments={n}',) + GENERATOR, f'n = {n}')
      for n in (2, 3, 4, 5)
    ),
    overrides=DATA,
    stages=(VIEW_SYNTHESIS,),
    random_init=True,
    seeds=(0, 1, 2),
  )

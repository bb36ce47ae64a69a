"""rate_order Table V at CPU scale on synthetic_motion: rate regression vs classification, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/rate_order_table5.py [--jobs N]

Both rows are the whole method (`configs/rate_order.py:tiny`, generator from the
`configs/view_synthesis.py:tiny` stage of the same seed); `classification` predicts each
segment's rate as one of the 8 classes 1..8 (cross entropy, weight 0.3), `regression` (the
method) regresses it (MSE). Pretext diagnostic train/rate_error: the mean absolute error of the
predicted rates (for classification, of the arg-max class).
Paper (UCF101; retrieval top-1 / finetune): C3D 34.7 / 74.5 vs 35.6 / 75.9, R(2+1)D 38.6 / 79.3
vs 39.7 / 80.1.
Being measured across machines with `--record results/ablations/rate_order_table5` (what
has finished is in that directory; progress in docs/methods/rate_order.md).
"""

from jaxvssl.ablate import Ablation, Row

from configs.ablations.cacl_table1 import DATA
from configs.ablations.rate_order_table6 import CONFIG, GENERATOR, VIEW_SYNTHESIS


def get_ablation() -> Ablation:
  return Ablation(
    name='rate_order_table5',
    description=(
      'rate_order Table V (sampling-rate prediction as classification or regression) at the '
      'tiny CPU scale on synthetic_motion/default.'
    ),
    rows=(
      Row(
        'classification',
        CONFIG,
        ('rate_order.rate_objective=classification',) + GENERATOR,
        'classification',
      ),
      Row('regression', CONFIG, GENERATOR, 'regression (rate_order)'),
    ),
    overrides=DATA,
    stages=(VIEW_SYNTHESIS,),
    random_init=True,
    seeds=(0, 1, 2),
  )

"""Why rate_order's contrast lowers R@1 at CPU scale: the contrast alone, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/rate_order_contrast.py

Table VI at the tiny scale (`rate_order_table6.py`) refutes the paper's largest step: adding the
contrast (MoCo, cosine similarity, key = the other clip) to order + rate lowers retrieval R@1
from 55.1 to 43.5 %, while the linear probes do not change. One row answers the first question
that raises: what does the contrast learn on its own on this data set? Its row is Table VI's
`contrast` row with the order and rate heads switched off, so it reads against Table VI's rows
seed by seed (same config, data and seeds):
  contrast_alone  MoCo with cosine similarity alone (order and rate weights 0)
If the contrast alone retrieves worse than the order row, and order + rate + contrast lands
between the two, the combined features are pulled toward the contrast's weaker solution; if the
combination falls below both, the two objectives interfere.
Being measured across machines with `--record results/ablations/rate_order_contrast`.
"""

from jaxvssl.ablate import Ablation, Row

from configs.ablations.cacl_table1 import DATA
from configs.ablations.rate_order_table6 import CONFIG


def get_ablation() -> Ablation:
  return Ablation(
    name='rate_order_contrast',
    description=(
      'rate_order at the tiny CPU scale on synthetic_motion/default: the contrast of Table '
      "VI's `contrast` row (cosine similarity, no view synthesis) without the order and rate "
      'heads.'
    ),
    rows=(
      Row(
        'contrast_alone',
        CONFIG,
        (
          'rate_order.order_weight=0',
          'rate_order.rate_weight=0',
          'rate_order.similarity=cosine',
          'rate_order.synthetic_key_prob=0',
        ),
        'contrast alone (cosine)',
      ),
    ),
    overrides=DATA,
    seeds=(0, 1, 2),
  )

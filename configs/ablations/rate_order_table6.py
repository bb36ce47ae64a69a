"""rate_order Table VI at CPU scale on synthetic_motion: the components one by one, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/rate_order_table6.py [--jobs N] [--rows order,shuffle]

Per seed: the view-synthesis stage (`configs/view_synthesis.py:tiny`, in
OUT/stages/view_synthesis/seed<k>, or DIR/view_synthesis/seed<k> with `--stages DIR`: Tables V
and III train the same stage and may share DIR), then every row `configs/rate_order.py:tiny` with one change
set, then the first row's backbone at random initialisation. Rows, as in the paper's Table VI:
  order           order prediction alone (no rate, no contrast)
  order_rate      + sampling-rate prediction (weight 0.3)
  contrast        + contrastive learning: MoCo with cosine similarity, key = the other clip
  shuffle         + shuffle similarity (Algorithm 1)
  synthesis       + view synthesis: the key is the stage's G(query) with probability 0.5 (the
                  method, `configs/rate_order.py:tiny` unchanged)
Paper (R(2+1)D, UCF101, retrieval top-1 / finetune): 10.2 / 73.5, 11.4 / 75.6, 38.0 / 77.2,
38.5 / 77.8, 39.7 / 80.1. Pretext diagnostics (train/order_accuracy, train/rate_error,
train/contrastive_loss) come with every row.
Being measured across machines with `--record results/ablations/rate_order_table6` (what
has finished is in that directory; progress in docs/methods/rate_order.md).
"""

from jaxvssl.ablate import Ablation, Row, Stage

from configs.ablations.cacl_table1 import DATA

CONFIG = 'configs/rate_order.py:tiny'
VIEW_SYNTHESIS = Stage('view_synthesis', 'configs/view_synthesis.py:tiny')
# The generator of the rows that use it: the view_synthesis stage of the same seed.
GENERATOR = ('rate_order.view_synthesis_workdir={stage:view_synthesis}',)


def get_ablation() -> Ablation:
  return Ablation(
    name='rate_order_table6',
    description=(
      'rate_order Table VI (each component added in turn) at the tiny CPU scale on '
      'synthetic_motion/default: `configs/rate_order.py:tiny` with one change per row; the '
      'view-synthesis row on the `configs/view_synthesis.py:tiny` stage of the same seed.'
    ),
    rows=(
      Row(
        'order',
        CONFIG,
        ('rate_order.rate_weight=0', 'rate_order.contrastive_weight=0'),
        'order',
      ),
      Row('order_rate', CONFIG, ('rate_order.contrastive_weight=0',), '+ rate'),
      Row(
        'contrast',
        CONFIG,
        ('rate_order.similarity=cosine', 'rate_order.synthetic_key_prob=0'),
        '+ contrast (cosine)',
      ),
      Row('shuffle', CONFIG, ('rate_order.synthetic_key_prob=0',), '+ shuffle similarity'),
      Row('synthesis', CONFIG, GENERATOR, '+ view synthesis (rate_order)'),
    ),
    overrides=DATA,
    stages=(VIEW_SYNTHESIS,),
    random_init=True,
    seeds=(0, 1, 2),
  )

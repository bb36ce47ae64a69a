"""Why T collapses at the tiny scale (issue: CACL's claim), seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/cacl_t_collapse.py [--jobs N]

Every row is `configs/cacl.py:vmoco_t.tiny` (V-MoCo + T: the four cross-architecture positives
under the paper's 'sum', no SDP) with one change, next to V-MoCo without T:
  vmoco            no T (the reference T should beat)
  vmoco_t          as the paper writes it
  gg_tt            only the two same-architecture positives (Gq, Gk) and (Tq, Tk): with no
                   cross-architecture pull, does T still collapse, and does G still lose?
  t_mean_pool      T's output = mean of its frame tokens, not CLS (`cacl.transformer_pool`)
  t_negatives      an InfoNCE anchored on Tq against the queue (`cacl.transformer_negatives`)
  t_slow           T at 1/10 of G's learning rate, T's key copy at momentum 0.999
  t_independent    the released code's 'independent' aggregation of the positives
  t_keys_out       T's keys not pushed into the queue (`cacl.enqueue_transformer_keys=false`):
                   G's negatives are G keys only
Per seed the frames stage (`configs/frames.py:tiny`) is trained first, as in cacl_table1.
The diagnostics in results.md (`train/similarity/tq_tk`, `train/similarity/gq_tq`, ...) are the
CACL Table 3 analogue: the mean cosine of each positive pair at the end of training.
"""

from configs.ablations.cacl_table1 import DATA, FRAME_ENCODER, FRAMES
from jaxvssl.ablate import Ablation, Row

VMOCO_T = 'configs/cacl.py:vmoco_t.tiny'
SLOW_T = (
  'optim.lr_multipliers.transformer=0.1',
  'optim.lr_multipliers.transformer_head=0.1',
  'cacl.transformer_momentum=0.999',
)


def get_ablation() -> Ablation:
  return Ablation(
    name='cacl_t_collapse',
    description=(
      'V-MoCo+T (`configs/cacl.py:vmoco_t.tiny`) with one change per row, against V-MoCo: '
      'which change lets T help G instead of collapsing?'
    ),
    rows=(
      Row('vmoco', 'configs/cacl.py:vmoco.tiny', FRAME_ENCODER, 'V-MoCo'),
      Row('vmoco_t', VMOCO_T, FRAME_ENCODER, 'V-MoCo+T'),
      Row(
        'gg_tt',
        VMOCO_T,
        FRAME_ENCODER + ('cacl.positive_pairs=(gq_gk,tq_tk)', 'cacl.tq_tk_collapse_threshold=0.99'),
        'only (Gq,Gk), (Tq,Tk)',
      ),
      Row('t_mean_pool', VMOCO_T, FRAME_ENCODER + ('cacl.transformer_pool=mean',), 'T mean pool'),
      Row(
        't_negatives', VMOCO_T, FRAME_ENCODER + ('cacl.transformer_negatives=true',), 'T negatives'
      ),
      Row('t_slow', VMOCO_T, FRAME_ENCODER + SLOW_T, 'T lr x0.1, m 0.999'),
      Row(
        't_independent',
        VMOCO_T,
        FRAME_ENCODER + ('cacl.positive_aggregation=independent',),
        "'independent' positives",
      ),
      Row(
        't_keys_out',
        VMOCO_T,
        FRAME_ENCODER + ('cacl.enqueue_transformer_keys=false',),
        'no T keys in the queue',
      ),
    ),
    overrides=DATA,
    stages=(FRAMES,),
    random_init=True,
    seeds=(0, 1, 2),
  )

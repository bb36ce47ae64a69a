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
The issue's experiment 2, G's input and T's input:
  t_difference     T reads frame-DIFFERENCE features (`cacl.frame_input=difference`) from a
                   frames stage trained on difference images (stage `frames_diff`,
                   `frames.input=difference`): T sees the same residual input as G
  vmoco_rgb        V-MoCo with G on RGB frames (`model.input_mode=rgb`), and
  vmoco_t_rgb      V-MoCo+T, and
  t_independent_rgb  'independent' with G on RGB: does the residual-vs-RGB mismatch matter?
Per seed the frames stages (`configs/frames.py:tiny`, RGB and difference) are trained first, as
in cacl_table1.
The diagnostics in results.md (`train/similarity/tq_tk`, `train/similarity/gq_tq`, ...) are the
CACL Table 3 analogue: the mean cosine of each positive pair at the end of training.
"""

from configs.ablations.cacl_table1 import DATA, FRAME_ENCODER, FRAMES
from jaxvssl.ablate import Ablation, Row, Stage

# A frame encoder trained on difference images (frame t + data.stride minus frame t).
FRAMES_DIFF = Stage('frames_diff', 'configs/frames.py:tiny', ('frames.input=difference',))
RGB = ('model.input_mode=rgb',)

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
        't_difference',
        VMOCO_T,
        ('cacl.frame_encoder_workdir={stage:frames_diff}', 'cacl.frame_input=difference'),
        'T on frame differences',
      ),
      Row('vmoco_rgb', 'configs/cacl.py:vmoco.tiny', FRAME_ENCODER + RGB, 'V-MoCo, G on RGB'),
      Row('vmoco_t_rgb', VMOCO_T, FRAME_ENCODER + RGB, 'V-MoCo+T, G on RGB'),
      Row(
        't_independent_rgb',
        VMOCO_T,
        FRAME_ENCODER + RGB + ('cacl.positive_aggregation=independent',),
        "'independent', G on RGB",
      ),
      Row(
        't_keys_out',
        VMOCO_T,
        FRAME_ENCODER + ('cacl.enqueue_transformer_keys=false',),
        'no T keys in the queue',
      ),
    ),
    overrides=DATA,
    stages=(FRAMES, FRAMES_DIFF),
    random_init=True,
    seeds=(0, 1, 2),
  )

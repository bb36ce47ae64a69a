"""CACL Table 2 at CPU scale on synthetic_motion: SDP + V-MoCo with the positive pairs added in
the paper's order, x seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/cacl_table2.py [--jobs N] [--seeds 0,1,2]

`pairs_gg` is the same config as Table 1's `sdp_vmoco` and `pairs_all` as `sdp_vmoco_t`; they are
trained again here so the table stands on its own. Frames stage, data and output as in
cacl_table1.py (output: runs/ablations/cacl_table2/results.md).
"""

from configs.ablations import cacl_table1
from jaxvssl.ablate import Ablation

# (configs/cacl.py row, positive pairs in the table): G = the video backbone, T = the
# transformer over frame features, q / k = query / key clip.
ROWS = (
  ('pairs_gg', '(Gq,Gk)'),
  ('pairs_gg_gtq', '(Gq,Gk) (Gq,Tq)'),
  ('pairs_gg_gtq_gtk', '(Gq,Gk) (Gq,Tq) (Gq,Tk)'),
  ('pairs_all', '(Gq,Gk) (Gq,Tq) (Gq,Tk) (Tq,Tk)'),
)


def get_ablation() -> Ablation:
  return Ablation(
    name='cacl_table2',
    description=(
      'CACL Table 2 (which positive pairs the contrastive loss uses, with SDP) at the tiny CPU '
      'scale on synthetic_motion/default: `configs/cacl.py:<row>.tiny`, each row on the frames '
      'stage `configs/frames.py:tiny` of the same seed.'
    ),
    rows=cacl_table1.cacl_rows(ROWS),
    overrides=cacl_table1.DATA,
    stages=(cacl_table1.FRAMES,),
    random_init=True,
    seeds=(0, 1, 2),
  )

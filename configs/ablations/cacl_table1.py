"""CACL Table 1 at CPU scale on synthetic_motion: six rows x seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/cacl_table1.py [--jobs N] [--seeds 0,1,2] [--rows sdp,vmoco]

Per seed: the frames stage (image MoCo of the resnet10 x0.25 frame encoder,
`configs/frames.py:tiny`, in OUT/stages/frames/seed<k>), then every row `configs/cacl.py:<row>.tiny`
with `cacl.frame_encoder_workdir` set to that stage (rows without T ignore it), then the first
row's backbone at random initialisation. Data: synthetic_motion/default in `<repo>/data/tfds`
(built first when missing; `--data_dir` moves it). Output: runs/ablations/cacl_table1/results.md.
"""

import os

from jaxvssl.ablate import Ablation, Row, Stage

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.path.join(REPO_ROOT, 'data', 'tfds')
DATA = ('data.name=synthetic_motion/default', f'data.data_dir={DATA_DIR}')
FRAMES = Stage('frames', 'configs/frames.py:tiny')
# The frame encoder of every row: the frames stage of the same seed.
FRAME_ENCODER = ('cacl.frame_encoder_workdir={stage:frames}',)

# (configs/cacl.py row, name in the table), in the paper's order.
ROWS = (
  ('sdp', 'SDP'),
  ('sdp_star', 'SDP*'),
  ('vmoco', 'V-MoCo'),
  ('sdp_vmoco', 'SDP+V-MoCo'),
  ('vmoco_t', 'V-MoCo+T'),
  ('sdp_vmoco_t', 'SDP+V-MoCo+T'),
)


def cacl_rows(rows) -> tuple[Row, ...]:
  return tuple(Row(row, f'configs/cacl.py:{row}.tiny', FRAME_ENCODER, name) for row, name in rows)


def get_ablation() -> Ablation:
  return Ablation(
    name='cacl_table1',
    description=(
      'CACL Table 1 (SDP, V-MoCo and the transformer T) at the tiny CPU scale on '
      'synthetic_motion/default: `configs/cacl.py:<row>.tiny`, each row on the frames stage '
      '`configs/frames.py:tiny` of the same seed.'
    ),
    rows=cacl_rows(ROWS),
    overrides=DATA,
    stages=(FRAMES,),
    random_init=True,
    seeds=(0, 1, 2),
  )

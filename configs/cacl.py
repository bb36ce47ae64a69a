"""CACL ("Cross-Architecture Self-supervised Video Representation Learning", CVPR 2022): Table 1 ablation rows and Table 2 positive-pair sets, paper size and CPU size.

Variant = `<row>.<size>`, e.g. `--config=configs/cacl.py:sdp_vmoco_t.r3d18` or `...:sdp.tiny`.

Rows, Table 1 (C3D in the paper):
  sdp            SDP only: shuffle-degree prediction, uniform degree sampling (no contrastive)
  sdp_star       SDP*: the same with degrees as uniformly random permutations give them
  vmoco          V-MoCo: MoCo on G(x) with two augmentations of one clip (no SDP, no T)
  sdp_vmoco      SDP + V-MoCo (G sees [x, x~]; = Table 2 row 1)
  vmoco_t        V-MoCo + T: the four cross-architecture positives, no SDP
  sdp_vmoco_t    SDP + V-MoCo + T: full CACL (= Table 2 row 4)
Rows, Table 2 (SDP + V-MoCo with the positives added in the paper's order):
  pairs_gg       (Gq,Gk)
  pairs_gg_gtq   (Gq,Gk), (Gq,Tq)
  pairs_gg_gtq_gtk  (Gq,Gk), (Gq,Tq), (Gq,Tk)
  pairs_all      all four (= sdp_vmoco_t)
Sizes:
  c3d, r3d10, r3d18, r2plus1d10, r2plus1d18
         paper: 16 x 112 x 112 clips at stride 2 (frames resized to 128 x 171, plain random
         112 x 112 crops: data.crop='random'), batch 64, SGD momentum 0.9, lr 1e-3 cosine,
         wd 5e-4, 300 epochs of UCF101 split 1 (9,537 videos -> 149 steps/epoch -> 44,700 steps);
         queue 6400, tau 0.07, m 0.999 (released code); T: 768-d, 6 layers, 6 heads over a frozen
         ResNet-50 from `configs/frames.py:resnet50` in runs/frames/resnet50.
  tiny   CPU, synthetic_motion: R3D-10 (x1/8), 8 frames x 32 px at stride 4, batch 32,
         300 steps (configs/common.py: cpu_tiny); T 64-d, 2 layers, 2 heads over a resnet10 (x0.25) from
         `configs/frames.py:tiny` in runs/frames/tiny (`jaxvssl ablate
         configs/ablations/cacl_table1.py` trains one per seed and sets it).
The released code's differences (lr 0.01, wd 1e-4, SDP weight 0.0, 'independent' positives)
are one override away: --config.optim.base_learning_rate=0.01 --config.optim.weight_decay=1e-4
--config.cacl.sdp_weight=0 --config.cacl.positive_aggregation=independent.

Accelerator options (configs/common.py, docs/configs.md), appended with '+' to any variant, e.g.
`--config=configs/cacl.py:sdp_vmoco_t.r3d18+bf16`: bf16 (bfloat16 compute, float32 parameters, losses and
statistics), remat (every backbone stage rematerialised), device_input (uint8 transfer, augmentation on the device).
"""

from configs import common
from jaxvssl import config as config_lib
from jaxvssl.methods import cacl

ALL_PAIRS = cacl.POSITIVE_PAIRS

# row -> config.cacl values that define it.
ROWS = {
  'sdp': dict(contrastive_weight=0.0, sdp_weight=1.0),
  'sdp_star': dict(contrastive_weight=0.0, sdp_weight=1.0, sdp_uniform=False),
  'vmoco': dict(sdp_weight=0.0, positive_pairs=('gq_gk',), contrast_input='clip'),
  'sdp_vmoco': dict(positive_pairs=('gq_gk',)),
  'vmoco_t': dict(sdp_weight=0.0, positive_pairs=ALL_PAIRS, contrast_input='clip'),
  'sdp_vmoco_t': dict(positive_pairs=ALL_PAIRS),
  'pairs_gg': dict(positive_pairs=('gq_gk',)),
  'pairs_gg_gtq': dict(positive_pairs=('gq_gk', 'gq_tq')),
  'pairs_gg_gtq_gtk': dict(positive_pairs=('gq_gk', 'gq_tq', 'gq_tk')),
  'pairs_all': dict(positive_pairs=ALL_PAIRS),
}
PAPER_SIZES = ('c3d', 'r3d10', 'r3d18', 'r2plus1d10', 'r2plus1d18')
SIZES = PAPER_SIZES + ('tiny',)

# UCF101 split 1: 9,537 training videos; batch 64 with drop_remainder -> 149 steps per epoch.
UCF101_SPLIT1_TRAIN_VIDEOS = 9_537
PAPER_EPOCHS = 300


def get_config(arg: str = 'sdp_vmoco_t.tiny'):
  arg, options = common.split_options(arg)  # '+bf16', '+remat', ... (configs/common.py)
  row, _, size = arg.partition('.')
  if row not in ROWS or size not in SIZES:
    raise ValueError(
      f'unknown variant {arg!r} of configs/cacl.py; choose <row>.<size> with row '
      f'in {sorted(ROWS)} and size in {SIZES}'
    )
  config = config_lib.base_config('cacl')
  if size == 'tiny':
    tiny(config)
  else:
    paper(config, size)
  for key, value in ROWS[row].items():
    config.cacl[key] = value
  return common.apply_options(config, options)


def paper(config, backbone: str):
  """The paper's Sec. 4.1 protocol on UCF101 split 1."""
  config.data.name = 'ucf101/split1'
  config.data.num_frames = 16
  config.data.stride = 2
  config.data.crop_size = 112
  config.data.resize_short_side = 128  # frames 128 x 171 (UCF101's 4:3), then ...
  config.data.crop = 'random'  # ... a plain random 112 x 112 crop, no scale jitter (paper, code)
  config.model.backbone = backbone
  config.batch_size = 64
  config.num_steps = PAPER_EPOCHS * (UCF101_SPLIT1_TRAIN_VIDEOS // config.batch_size)
  config.optim.name = 'sgd'
  config.optim.base_learning_rate = 1e-3  # paper (released code: 0.01)
  config.optim.reference_batch_size = 64
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4  # paper (released code: 1e-4)
  config.optim.schedule = 'cosine'
  config.optim.warmup_steps = 0
  c = config.cacl
  c.queue_size = 6_400
  c.temperature = 0.07
  c.momentum = 0.999
  c.embed_dim = 128
  c.transformer_dim = 768
  c.transformer_layers = 6
  c.transformer_heads = 6
  c.frame_encoder = 'resnet50'
  c.frame_encoder_width = 1.0
  c.frame_encoder_workdir = 'runs/frames/resnet50'
  config.checkpoint_every_steps = 2_000
  config.log_every_steps = 50
  return config


def tiny(config):
  """CPU scale: the data, backbone, batch and steps of every `:tiny` (common.cpu_tiny)."""
  common.cpu_tiny(config)
  c = config.cacl
  c.queue_size = 1_024  # 16 steps of G + T keys
  c.temperature = 0.1
  c.momentum = 0.99
  c.transformer_dim = 64
  c.transformer_layers = 2
  c.transformer_heads = 2
  c.frame_encoder = 'resnet10'
  c.frame_encoder_width = 0.25
  c.frame_encoder_workdir = 'runs/frames/tiny'
  return config

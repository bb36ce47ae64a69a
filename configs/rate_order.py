"""rate_order: segment order + sampling-rate prediction + contrast with shuffle similarity and view
synthesis (IEEE TCSVT 2021, docs/methods/rate_order.md). Its generator comes from the
view-synthesis stage, `configs/view_synthesis.py` (train that first).

Variants (`--config=configs/rate_order.py:<variant>`):
  r2plus1d18  paper size (Tables III-VI use R(2+1)D): UCF101 split 1, 16 x 112 x 112 clips of
              n = 3 segments (lengths >= 3, rates [1, 8]), frames resized to 128 x 171 and
              randomly cropped to 112 x 112, colour jitter (brightness, contrast, saturation),
              horizontal flip; batch 16, SGD lr 1e-3, momentum 0.9, wd 5e-4, 300 epochs
              (9,537 videos -> 596 steps/epoch -> 178,800 steps), lr x 0.1 after epoch 200;
              generator from runs/view_synthesis/paper (`configs/view_synthesis.py:paper`).
  c3d, r3d18  the same with the paper's other backbones.
  tiny        CPU: the shared tiny scale (configs/common.py: R3D-10 at 1/8 width,
              synthetic_motion, 32 px, batch 32) trained with Adam lr 1e-3 for 6,000 steps
              on group-centred input (each frame minus the mean of its 2-frame group), with
              8-frame clips of n = 3 segments of 2, 2 and 4 frames, rates [1, 8], a 60-d
              embedding, queue 1024, generator from runs/view_synthesis/tiny
              (`configs/view_synthesis.py:tiny`).

Table rows are overrides (configs/ablations/rate_order_table{3,5,6}.py), e.g. without view
synthesis `--config.rate_order.synthetic_key_prob=0`, with cosine similarity
`--config.rate_order.similarity=cosine`.

Accelerator options (configs/common.py, docs/configs.md), appended with '+' to any variant, e.g.
`--config=configs/rate_order.py:r2plus1d18+bf16`: bf16, remat, device_input.
"""

from configs import common
from jaxvssl import config as config_lib

UCF101_SPLIT1_TRAIN_VIDEOS = 9_537
PAPER_BATCH = 16
PAPER_EPOCHS = 300
PAPER_SIZES = ('r2plus1d18', 'c3d', 'r3d18')


def get_config(arg: str = 'tiny'):
  arg, options = common.split_options(arg)  # '+bf16', '+remat', ... (configs/common.py)
  config = config_lib.base_config('rate_order')
  # G only on the chosen half of the keys (the method's default, 'bernoulli', is what runs made
  # before this key existed did).
  config.rate_order.synthetic_key_draw = 'subset'
  if arg in PAPER_SIZES:
    paper(config, arg)
  elif arg == 'tiny':
    tiny(config)
  else:
    raise ValueError(
      f'unknown variant {arg!r} of configs/rate_order.py; choose one of {PAPER_SIZES + ("tiny",)}'
    )
  return common.apply_options(config, options)


def paper(config, backbone: str):
  """The paper's Sec. IV-D protocol on UCF101 split 1."""
  config.data.name = 'ucf101/split1'
  config.data.num_frames = 16
  config.data.crop_size = 112
  config.data.resize_short_side = 128  # 128 x 171, then a plain random 112 x 112 crop
  config.data.crop = 'random'
  # "color jitter ... brightness, contrast, and saturation", then a random horizontal flip; no
  # hue, grayscale or blur (strength and probability are not given: the common 0.4 and 0.8).
  config.data.color_jitter_strength = (0.4, 0.4, 0.4, 0.0)
  config.data.color_jitter_prob = 0.8
  config.data.grayscale_prob = 0.0
  config.data.blur_prob = 0.0
  config.data.flip_prob = 0.5
  config.model.backbone = backbone
  config.batch_size = PAPER_BATCH
  config.num_steps = PAPER_EPOCHS * (UCF101_SPLIT1_TRAIN_VIDEOS // PAPER_BATCH)
  config.optim.name = 'sgd'
  config.optim.base_learning_rate = 1e-3
  config.optim.reference_batch_size = PAPER_BATCH
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  config.optim.schedule = 'step'
  config.optim.step_boundaries = (200 / 300,)  # lr x 0.1 after 200 of 300 epochs
  config.optim.step_factor = 0.1
  config.optim.warmup_steps = 0
  r = config.rate_order
  r.num_segments = 3
  r.min_segment_length = 3
  r.rate_min, r.rate_max = 1, 8
  r.embed_dim = 120
  r.head_hidden_dim = 512
  r.order_hidden_dim = 512
  # Not given by the paper: MoCo v1's temperature and momentum, and a queue shorter than one
  # epoch (8,192 < 9,537 videos), so that it never holds the same video twice.
  r.queue_size = 8_192
  r.temperature = 0.07
  r.momentum = 0.999
  r.view_synthesis_workdir = 'runs/view_synthesis/paper'
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 50
  return config


def tiny(config):
  """CPU scale: `common.cpu_tiny` with the rate_order section at a size that fits it.

  8-frame clips cannot hold 3 segments of >= 3 frames (9 > 8): the tiny rule is segments of
  >= 2 frames (the smallest that shows a rate). With 8 frames the rates [1, 8] are drawn
  uniformly on synthetic_motion's 48-frame videos (16 frames could not: their spans would be
  up to 121 frames; docs/methods/rate_order.md, "Clip construction").
  """
  common.cpu_tiny(config)
  # cpu_tiny's residual frames would show the seams between the shuffled segments (where the
  # order breaks); each frame minus the mean of its 2-frame group keeps what moves, and with
  # segment lengths in multiples of 2 no group straddles a seam (as configs/scvrl.py:tiny).
  config.model.input_mode = 'group_residual'
  config.model.input_group_size = 2
  # Adam at a constant 1e-3 for 6,000 steps, not cpu_tiny's SGD for 300: with SGD (lr 0.1 or
  # 0.01) the order head stays at chance (ln 6) for 1,500 steps even alone; with Adam it sits on
  # a plateau and then falls, in the whole method from about step 3,000 (34.8 % at 6,000, seed 0;
  # docs/methods/rate_order.md, "The tiny scale"). Constant, as tiny MoCo
  # (docs/results/moco_schedule.md).
  config.optim.name = 'adam'
  config.optim.base_learning_rate = 1e-3
  config.optim.weight_decay = 0.0
  config.optim.schedule = 'constant'
  config.num_steps = 6_000
  config.log_every_steps = 50
  config.checkpoint_every_steps = 500
  r = config.rate_order
  r.num_segments = 3
  r.min_segment_length = 2
  r.segment_length_multiple = 2  # lengths 2, 2, 4 in some order
  r.rate_min, r.rate_max = 1, 8
  r.order_hidden_dim = 128
  r.head_hidden_dim = 128
  r.embed_dim = 60  # divisible by every n in 2..5
  r.queue_size = 1_024
  r.temperature = 0.1
  r.momentum = 0.99
  r.view_synthesis_workdir = 'runs/view_synthesis/tiny'
  # The tiny view_synthesis stage's generator (configs/view_synthesis.py:tiny).
  r.generator_channels = (16, 32)
  r.latent_dim = 8
  return config

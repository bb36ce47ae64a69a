"""MLFO: multi-level feature optimization (docs/methods/mlfo.md).

Variants (`--config=configs/mlfo.py:<variant>`):
  r3d18      paper size: R3D-18 with the authors' stem (`stem='mlfo'`), 16 x 112 x 112 clips of a
             32-frame window at stride 1, batch 256, Adam lr 1e-3, wd 1e-5, 300 epochs of
             UCF101 split 1 (9,537 videos -> 37 steps/epoch -> 11,100 steps), lr / 10 at epoch
             200, K = 200 prototypes, queue 1024 from epoch 10.
  r3d18_k400 the Kinetics-400 setting: K = 1000, 100 epochs (about 240k videos -> 937 steps/epoch),
             lr / 10 at epoch 70.
  s3d        `r3d18` with S3D-G (the paper's other backbone).
  tiny       CPU: R3D-10 at 1/8 width (the shared tiny scale, configs/common.py) with the authors'
             stem, 16-frame clips of a 32-frame window at stride 1 (the 48-frame synthetic videos
             hold it), 32 px, batch 32, K = 32, queue 128 from step 10, Adam as the paper.
  tiny_code  `tiny` with the released code's variant (`released_code`).

Accelerator options (configs/common.py, docs/configs.md), appended with '+' to any variant, e.g.
`--config=configs/mlfo.py:r3d18+bf16`: bf16 (bfloat16 compute, float32 parameters, losses and
statistics), remat (every backbone stage rematerialised), device_input (uint8 transfer, augmentation on the device).
"""

from configs import common
from jaxvssl import config as config_lib

UCF101_STEPS_PER_EPOCH = 9_537 // 256  # 37, batch 256 (the last partial batch is dropped)
K400_STEPS_PER_EPOCH = 240_000 // 256  # 937


def get_config(arg: str = 'tiny'):
  arg, options = common.split_options(arg)  # '+bf16', '+remat', ... (configs/common.py)
  config = config_lib.base_config('mlfo')
  if arg == 'r3d18':
    r3d18(config)
  elif arg == 'r3d18_k400':
    r3d18_k400(config)
  elif arg == 's3d':
    r3d18(config)
    config.model.backbone = 's3d'
    config.model.kwargs = {}
  elif arg == 'tiny':
    tiny(config)
  elif arg == 'tiny_code':
    released_code(tiny(config))
  else:
    raise ValueError(
      f'unknown variant {arg!r} of configs/mlfo.py; choose r3d18, r3d18_k400, s3d, tiny or '
      'tiny_code'
    )
  return common.apply_options(config, options)


def paper_optimizer(config, epochs: int, decay_epoch: int, steps_per_epoch: int):
  """Adam lr 1e-3, wd 1e-5, batch 256, lr / 10 at `decay_epoch` of `epochs`."""
  config.batch_size = 256
  config.num_steps = epochs * steps_per_epoch
  config.optim.name = 'adam'
  config.optim.base_learning_rate = 1e-3
  config.optim.scale_learning_rate = False
  config.optim.weight_decay = 1e-5
  config.optim.schedule = 'step'
  config.optim.step_boundaries = (decay_epoch / epochs,)
  config.optim.step_factor = 0.1
  config.mlfo.queue_size = 1024
  config.mlfo.queue_start_step = 10 * steps_per_epoch  # the released code: epoch 10
  return config


def r3d18(config):
  """The paper's UCF101 setting."""
  config.data.name = 'ucf101/split1'
  config.data.num_frames = 16
  config.data.stride = 1  # 32 consecutive frames -> clips a, b and the long sequence
  config.data.crop_size = 112
  config.model.backbone = 'r3d18'
  config.model.kwargs = {'stem': 'mlfo'}
  paper_optimizer(config, epochs=300, decay_epoch=200, steps_per_epoch=UCF101_STEPS_PER_EPOCH)
  config.mlfo.num_prototypes = 200
  config.checkpoint_every_steps = 1_000
  config.log_every_steps = 20
  return config


def r3d18_k400(config):
  """The paper's Kinetics-400 setting: K = 1000, 100 epochs, lr / 10 at 70."""
  r3d18(config)
  config.data.name = 'kinetics/k400'
  paper_optimizer(config, epochs=100, decay_epoch=70, steps_per_epoch=K400_STEPS_PER_EPOCH)
  config.mlfo.num_prototypes = 1000
  config.checkpoint_every_steps = 2_000
  config.log_every_steps = 50
  return config


def tiny(config):
  """CPU scale: `common.cpu_tiny` (R3D-10 at 1/8 width, residual input) at 16 frames.

  16 frames (not cpu_tiny's 8) so that every level has >= 2 timesteps (16 / 8 / 4 / 2 at stages
  1-4): at 8 frames the high level has one timestep, its shuffle equals its reverse and
  retrieval has nothing to pool.
  """
  common.cpu_tiny(config)
  config.data.num_frames = 16
  config.data.stride = 1
  config.model.kwargs = {'stem': 'mlfo'}
  config.optim.name = 'adam'
  config.optim.base_learning_rate = 1e-3
  config.optim.scale_learning_rate = False
  config.optim.weight_decay = 1e-5
  config.optim.schedule = 'step'
  config.optim.step_boundaries = (2 / 3,)  # the paper's 200 of 300 epochs
  config.mlfo.num_prototypes = 32
  config.mlfo.queue_size = 128  # 4 batches
  config.mlfo.queue_start_step = 10  # 1/30 of the 300 steps, as epoch 10 of 300
  config.mlfo.embed_dim = 64
  config.mlfo.me_reduction = 4  # 16 would leave 1-2 channels at 1/8 width
  return config


def released_code(config):
  """The released code's choices where they differ from the paper (docs/methods/mlfo.md):
  a separate BatchNorm head for the prototypes, the graph loss in its cross-view one-direction
  form and also at the high level, time reversal only with the other samples as negatives too,
  on the mid and low levels, at weight 0.5."""
  config.mlfo.semantic_head = True
  config.mlfo.graph_form = 'code'
  config.mlfo.graph_levels = ('high', 'mid', 'low')
  config.mlfo.aug_ops = ('reverse',)
  config.mlfo.aug_batch_negatives = True
  config.mlfo.aug_levels = ('mid', 'low')
  config.mlfo.aug_weight = 0.5
  return config

"""MoCo video baseline (CACL Table 1 "V-MoCo"; CVRL-style two-clip views).

Variants (`--config=configs/moco.py:<variant>`):
  r3d18  paper size: R3D-18, 16 frames x 112 x 112 at stride 2, global batch 64, SGD, 300 epochs
         of UCF101 split 1 (9,537 videos -> 149 steps/epoch -> 44,700 steps).
  tiny   CPU: an R3D-10 at 1/8 width on synthetic_motion (64x64 videos, 8 frames, 32 px crops),
         300 steps at a constant learning rate, about 1.5 min of training on 2 cores.

Accelerator options (configs/common.py, docs/configs.md), appended with '+' to any variant, e.g.
`--config=configs/moco.py:r3d18+bf16`: bf16 (bfloat16 compute, float32 parameters, losses and
statistics), remat (every backbone stage rematerialised), device_input (uint8 transfer, augmentation on the device).
"""

from configs import common
from jaxvssl import config as config_lib


def get_config(arg: str = 'tiny'):
  arg, options = common.split_options(arg)  # '+bf16', '+remat', ... (configs/common.py)
  config = config_lib.base_config('moco')
  if arg == 'r3d18':
    config.data.name = 'ucf101/split1'
    config.data.num_frames = 16
    config.data.stride = 2
    config.data.crop_size = 112
    config.model.backbone = 'r3d18'
    config.batch_size = 64
    config.num_steps = 44_700
    config.optim.name = 'sgd'
    config.optim.base_learning_rate = 0.01
    config.optim.reference_batch_size = 64
    config.optim.weight_decay = 5e-4
    config.optim.warmup_steps = 1_000
    config.moco.queue_size = 6_400 * 10
    config.moco.temperature = 0.07
    config.moco.momentum = 0.999
    config.checkpoint_every_steps = 2_000
    config.log_every_steps = 50
  elif arg == 'tiny':
    tiny(config)
  else:
    raise ValueError(f'unknown variant {arg!r} of configs/moco.py; choose r3d18 or tiny')
  return common.apply_options(config, options)


def tiny(config):
  """The CPU variant used by the README's main command and the smoke test."""
  common.cpu_tiny(config)
  # A constant learning rate after the warm-up, not cosine decay to 0: with the decay the key
  # encoder catches up with a query encoder that stops moving, the embeddings contract and the
  # loss rises over the second half (5.03 at the end against 4.34; linear probe video 49.7 +- 3.0
  # against 56.1 +- 4.3, R@1 no different; `jaxvssl ablate configs/ablations/moco_schedule.py`,
  # docs/methods/moco.md).
  config.optim.schedule = 'constant'
  config.moco.queue_size = 1024
  config.moco.temperature = 0.1
  config.moco.momentum = 0.99
  config.moco.head_hidden_dim = 128
  return config

"""rate_order's view-synthesis stage: a VAE generator G and a flow network O (docs/methods/rate_order.md).

Its run directory is what `configs/rate_order.py` points `config.rate_order.view_synthesis_workdir`
at; G's architecture here (`view_synthesis.generator_channels`, `latent_dim`, `temporal_kernel`)
must equal `rate_order.generator_channels`, ... there (checked when rate_order loads it).

The paper gives no training setting for this stage; ours:
  paper  UCF101 split 1, 16 x 112 x 112 clips at stride 4 (the mean sampling rate of rate_order's
         [1, 8] segments), frames resized to 128 and randomly cropped, no colour augmentation;
         batch 16, Adam lr 1e-4, 50 epochs (29,800 steps); G (32, 64) with a 16-channel latent,
         O (32, 64, 96).
  tiny   CPU: synthetic_motion, 8 frames at stride 4, 32 px (the shared tiny scale, RGB input:
         the info-min extractor must see appearance), batch 32, Adam lr 1e-3, 300 steps;
         G (16, 32) with an 8-channel latent, O (16, 32, 48).

Accelerator options (configs/common.py), appended with '+': bf16, device_input.
"""

from configs import common
from jaxvssl import config as config_lib

UCF101_SPLIT1_TRAIN_VIDEOS = 9_537


def get_config(arg: str = 'tiny'):
  arg, options = common.split_options(arg)
  config = config_lib.base_config('view_synthesis')
  if arg == 'paper':
    paper(config)
  elif arg == 'tiny':
    tiny(config)
  else:
    raise ValueError(f'unknown variant {arg!r} of configs/view_synthesis.py; choose paper or tiny')
  return common.apply_options(config, options)


def _no_colour_augmentation(config):
  # G must learn what the data's appearance is; colour jitter would teach it noise.
  config.data.color_jitter_prob = 0.0
  config.data.grayscale_prob = 0.0
  config.data.blur_prob = 0.0


def paper(config):
  config.data.name = 'ucf101/split1'
  config.data.num_frames = 16
  config.data.stride = 4
  config.data.crop_size = 112
  config.data.resize_short_side = 128
  config.data.crop = 'random'
  _no_colour_augmentation(config)
  config.model.backbone = 'r2plus1d18'  # the info-min extractor f (frozen, random init)
  config.batch_size = 16
  config.num_steps = 50 * (UCF101_SPLIT1_TRAIN_VIDEOS // config.batch_size)
  config.optim.name = 'adam'
  config.optim.base_learning_rate = 1e-4
  config.optim.scale_learning_rate = False
  config.optim.weight_decay = 0.0
  config.optim.schedule = 'constant'
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 50
  return config


def tiny(config):
  common.cpu_tiny(config)
  config.model.input_mode = 'rgb'
  _no_colour_augmentation(config)
  config.optim.name = 'adam'
  config.optim.base_learning_rate = 1e-3
  config.optim.scale_learning_rate = False
  config.optim.weight_decay = 0.0
  config.optim.schedule = 'constant'
  config.optim.warmup_steps = 0
  v = config.view_synthesis
  v.generator_channels = (16, 32)
  v.latent_dim = 8
  v.flow_channels = (16, 32, 48)
  return config

"""The `frames` stage: image MoCo of CACL's 2D frame encoder on every 10th frame.

Its run directory is what `configs/cacl.py` points `config.cacl.frame_encoder_workdir` at; the
encoder name and width here must equal `cacl.frame_encoder` / `cacl.frame_encoder_width` there
(checked when cacl loads the checkpoint).

Variants (`--config=configs/frames.py:<variant>`):
  resnet50  paper: ResNet-50, MoCo v1 "same practice as in MoCo" (linear head, 128-d, queue 65536,
            tau 0.07, m 0.999, SGD lr 0.03 at batch 256, wd 1e-4, 200 epochs, lr x0.1 at epochs
            120 and 160) on every 10th frame of UCF101 split 1 (~180k frames -> 703 steps/epoch),
            112 px crops (the resolution cacl feeds it).
  tiny      CPU: resnet10 x0.25 on every 10th frame of synthetic_motion (800 videos x 5 frames),
            32 px crops (cacl's tiny crop), batch 64, 200 steps.

Accelerator options (configs/common.py, docs/configs.md), appended with '+' to any variant, e.g.
`--config=configs/frames.py:resnet50+bf16`: bf16 (bfloat16 compute, float32 parameters, losses and
statistics), device_input (uint8 transfer, augmentation on the device).
"""

from configs import common
from jaxvssl import config as config_lib

UCF101_SPLIT1_FRAMES = 180_000  # CACL paper, Sec. 4.1: "approximately 180k frames"


def get_config(arg: str = 'tiny'):
  arg, options = common.split_options(arg)  # '+bf16', '+remat', ... (configs/common.py)
  config = config_lib.base_config('frames')
  if arg == 'resnet50':
    config.data.name = 'ucf101/split1'
    config.data.crop_size = 112
    config.data.resize_short_side = 128
    config.data.frame_step = 10
    config.data.min_area = 0.2  # MoCo's RandomResizedCrop(scale=(0.2, 1))
    config.batch_size = 256
    steps_per_epoch = UCF101_SPLIT1_FRAMES // config.batch_size
    config.num_steps = 200 * steps_per_epoch
    config.optim.name = 'sgd'
    config.optim.base_learning_rate = 0.03
    config.optim.reference_batch_size = 256
    config.optim.momentum = 0.9
    config.optim.weight_decay = 1e-4
    config.optim.schedule = 'step'
    config.optim.step_boundaries = (120 / 200, 160 / 200)
    config.optim.step_factor = 0.1
    f = config.frames
    f.encoder = 'resnet50'
    f.width_multiplier = 1.0
    f.embed_dim = 128
    f.head_hidden_dim = 0
    f.queue_size = 65_536
    f.temperature = 0.07
    f.momentum = 0.999
    config.checkpoint_every_steps = 5_000
    config.log_every_steps = 100
  elif arg == 'tiny':
    common.cpu_tiny(config)
    config.model.input_mode = 'rgb'  # single frames: the tiny scale's residual input does not apply
    config.data.frame_step = 10
    config.batch_size = 64
    config.num_steps = 200
    config.optim.base_learning_rate = 0.06
    config.optim.reference_batch_size = 64
    f = config.frames
    f.encoder = 'resnet10'
    f.width_multiplier = 0.25
    f.embed_dim = 64
    f.head_hidden_dim = 0
    f.queue_size = 1_024
    f.temperature = 0.1
    f.momentum = 0.99
  else:
    raise ValueError(f'unknown variant {arg!r} of configs/frames.py; choose resnet50 or tiny')
  return common.apply_options(config, options)

"""Scales shared by several config files (import with `from configs import common`)."""

from __future__ import annotations

import ml_collections


def cpu_tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The shared CPU scale of every `:tiny` variant (the README demo, tests and
  ablations on a 2-core CPU).

  synthetic_motion/default, 8 frames at stride 4, 32 px crops, R3D-10 at 1/8 width, batch 32,
  300 SGD steps: about 0.13 s per MoCo step on 2 cores (docs/benchmarks.md). A method's `tiny` adds its own section.
  """
  config.data.name = 'synthetic_motion/default'
  config.data.num_frames = 8
  config.data.stride = 4
  config.data.crop_size = 32
  # Evaluation resizes the short side to crop / 0.875 before the center crop, the ratio of the
  # papers' 128 -> 112 protocol (a 32 px center crop of the raw 64 px frame would see a quarter
  # of the scene, at another scale than training's resized crops).
  config.data.eval_resize_short_side = 36
  # synthetic_motion's classes are chiral (left/right, cw/ccw): a horizontal flip turns one class
  # into its partner, so it is label noise for supervised training and, across two views, teaches
  # invariance to exactly what the classes differ by.
  config.data.flip_prob = 0.0
  # SimCLR's blur sigma range (0.1-2.0) is calibrated for 224 px; at 32 px a sigma of 2 erases
  # the 3-5 px objects.
  config.data.blur_prob = 0.0
  config.model.backbone = 'r3d10'
  config.model.width_multiplier = 0.125
  # Frame differences (models/residual.py): finetuned from random init for 200 steps, this
  # backbone reached 6.7 % video top-1 on RGB input (chance) and 56.7 % on residual input
  # (docs/configs.md, "The tiny scale", with the command). At this budget only residual input learns the classes.
  config.model.input_mode = 'residual'
  config.batch_size = 32
  config.num_steps = 300
  config.optim.name = 'sgd'
  config.optim.base_learning_rate = 0.1
  config.optim.reference_batch_size = 32
  config.optim.weight_decay = 1e-4
  config.optim.warmup_steps = 10
  config.checkpoint_every_steps = 100
  config.log_every_steps = 10
  config.evaluation.num_clips = 4
  config.evaluation.batch_size = 16
  config.finetune.epochs = 3
  config.finetune.batch_size = 32
  config.finetune.learning_rate = 0.05
  return config


# Accelerator options, appended to any variant with '+': `--config=configs/moco.py:r3d18+bf16`.
# They change how a step is computed, not what it computes (docs/configs.md, "Accelerator
# options"): bf16 changes the rounding; remat and the device input path change no loss beyond
# float rounding (uint8 transfer: the pixels' rounding to 1/255).
OPTIONS = ('bf16', 'remat', 'device_input', 'cudnn')


def split_options(arg: str) -> tuple[str, tuple[str, ...]]:
  """'r3d18+bf16+remat' -> ('r3d18', ('bf16', 'remat')); an unknown option is a ValueError."""
  variant, *options = arg.split('+')
  unknown = [o for o in options if o not in OPTIONS]
  if unknown:
    raise ValueError(f'unknown config option(s) {unknown} in {arg!r}; known: {OPTIONS}')
  return variant, tuple(options)


def apply_options(
  config: ml_collections.ConfigDict, options: tuple[str, ...]
) -> ml_collections.ConfigDict:
  """Applies `split_options`' options to a finished variant.

  bf16          model.dtype='bfloat16': activations and matmuls/convs in bfloat16; parameters,
                optimizer state, BatchNorm statistics, losses, softmax and Sinkhorn stay float32.
  remat         model.kwargs.remat_stages=(1, 2, 3, 4): every stage of the video backbone is
                rematerialised (activation memory for recomputation in the backward pass).
  device_input  uint8 transfer, augmentation and normalisation on the device, 2 batches put
                ahead; decode_and_crop_jpeg where the crop is known before decoding.
  cudnn         model.kwargs.attention_impl='cudnn' (MViT only; NVIDIA GPU with bf16).
  """
  if 'bf16' in options:
    config.model.dtype = 'bfloat16'
  if 'remat' in options:
    if config.method == 'frames':
      raise ValueError('option remat: the frames method trains a 2D frame encoder (no stages)')
    config.model.kwargs.remat_stages = (1, 2, 3, 4)
  if 'device_input' in options:
    config.data.transfer_dtype = 'uint8'
    config.data.device_augment = True
    config.data.device_prefetch = 2
    config.data.decode_crop = config.data.resize_short_side is None
  if 'cudnn' in options:
    if not config.model.backbone.startswith('mvit'):
      raise ValueError(f'option cudnn: {config.model.backbone} has no attention (MViT only)')
    config.model.kwargs.attention_impl = 'cudnn'
  return config

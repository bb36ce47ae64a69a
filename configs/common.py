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

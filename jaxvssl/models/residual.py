"""Residual-frame input: a backbone that sees frame differences instead of frames.

`x[:, 1:] - x[:, :-1]` removes what does not change over time (background, static texture,
colour) and keeps what moves, so a 3D CNN learns motion from far fewer examples (Tao, Wang and
Yamasaki, "Rethinking Motion Representation: Residual Frames with 3D ConvNets", 2020; used as
the second view of IIC and PCL). On synthetic_motion, whose classes are defined only by motion,
it is what lets the CPU-size runs learn within minutes (docs/configs.md, "The tiny scale").

The difference is taken inside the model, after any frame shuffling or permutation a method or
the shuffle-sensitivity evaluation applies, so every caller (training, retrieval, linear probe,
finetune, export) sees one consistent input transform.

`GroupResidualInput` is the variant for methods that shuffle GROUPS of frames (SCVRL moves
2-frame groups): each frame minus the mean of its own group. Differences across group seams
would show where a shuffled clip jumps (the pretext answer); within a group nothing crosses a
seam, so a group-shuffled clip's input is exactly the group-shuffled input of the natural clip.
"""

from __future__ import annotations

from typing import Any

import jax
import flax.linen as nn


def frame_differences(x: jax.Array) -> jax.Array:
  """`[B, T, H, W, C]` -> `[B, T - 1, H, W, C]`: frame t+1 minus frame t."""
  if x.ndim != 5 or x.shape[1] < 2:
    raise ValueError(f'frame_differences needs [B, T >= 2, H, W, C], got shape {x.shape}')
  return x[:, 1:] - x[:, :-1]


def group_centered(x: jax.Array, group_size: int) -> jax.Array:
  """`[B, T, H, W, C]` -> same shape: each frame minus the mean of its group of `group_size`.

  Groups are consecutive frames `[g * k, g * (k + 1))`; with g = 2 a group (a, b) becomes
  ((a - b) / 2, (b - a) / 2): half the frame difference, with the static content removed.
  """
  if x.ndim != 5 or group_size < 2 or x.shape[1] % group_size:
    raise ValueError(
      f'group_centered needs [B, T, H, W, C] with T divisible by group_size={group_size} >= 2, '
      f'got shape {x.shape}'
    )
  b, t = x.shape[:2]
  groups = x.reshape((b, t // group_size, group_size) + x.shape[2:])
  return (groups - groups.mean(axis=2, keepdims=True)).reshape(x.shape)


class ResidualInput(nn.Module):
  """Wraps a video backbone so that it is applied to `frame_differences(x)`.

  Variables live under 'backbone'. The call signature and outputs are the wrapped backbone's:
  `[B, T, H, W, C]` -> `[B, D]` (or `([B, D], stages)` with return_stages=True; the stages have
  T - 1 frames' worth of time).
  """

  backbone: nn.Module

  @property
  def feature_dim(self) -> int:
    return self.backbone.feature_dim

  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False) -> Any:
    return self.backbone(frame_differences(x), train=train, return_stages=return_stages)


class GroupResidualInput(nn.Module):
  """Wraps a video backbone so that it is applied to `group_centered(x, group_size)`.

  Variables live under 'backbone' (as `ResidualInput`); shapes are unchanged: `[B, T, H, W, C]`
  -> the wrapped backbone's output.
  """

  backbone: nn.Module
  group_size: int = 2

  @property
  def feature_dim(self) -> int:
    return self.backbone.feature_dim

  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False) -> Any:
    x = group_centered(x, self.group_size)
    return self.backbone(x, train=train, return_stages=return_stages)

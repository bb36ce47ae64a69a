"""Residual-frame input: a backbone that sees frame differences instead of frames.

`x[:, 1:] - x[:, :-1]` removes what does not change over time (background, static texture,
colour) and keeps what moves, so a 3D CNN learns motion from far fewer examples (Tao, Wang and
Yamasaki, "Rethinking Motion Representation: Residual Frames with 3D ConvNets", 2020; used as
the second view of IIC and PCL). On synthetic_motion, whose classes are defined only by motion,
it is what lets the CPU-size runs learn within minutes (docs/configs.md, "The tiny scale").

The difference is taken inside the model, after any frame shuffling or permutation a method or
the shuffle-sensitivity evaluation applies, so every caller (training, retrieval, linear probe,
finetune, export) sees one consistent input transform.
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

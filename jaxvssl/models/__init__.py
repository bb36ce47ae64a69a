"""Backbones, frame encoders and heads (flax.linen, channels-last).

Video backbones (`get_backbone`), input `[B, T, H, W, 3]`:
  'c3d'                       C3D, VCOP-line layout with BN                       512-d
  'r3d10' 'r3d18' 'r3d34'     R3D, torchvision layout (stem='mlfo' for mlfo)      512-d
  'r2plus1d10' 'r2plus1d18'   R(2+1)D, torchvision layout                         512-d
  's3d'                       S3D-G (gating=False for plain S3D)                  1024-d
  'mvit_b'                    MViT-B 16x4 (patch kernel 3x7x7)                    768-d
  'mvit_b_scvrl'              MViT-B with SCVRL's 2x7x7 / stride 2 patch embed    768-d
  'mvit_tiny'                 embed 16, depths (1,1,1,1), SCVRL patch embed (CPU) 128-d
Every backbone is called as
  `module.apply(variables, x, train=..., return_stages=False, mutable=['batch_stats'] if train
  else False)` -> `[B, D]`, or with return_stages=True `([B, D], stages)`, stages having 'stem',
  'stage1'..'stage4' (`[B, T', H', W', C]`) and 'pool5' (`[B, D]` retrieval feature).
Common kwargs: width_multiplier=1.0, bn_groups=1, dtype=jnp.float32 (plus each class' fields).
`get_backbone(name, input_mode='residual')` wraps any of them in `ResidualInput` (the backbone
sees frame differences, `[B, T-1, H, W, C]`; variables under 'backbone'); `input_mode=
'group_residual'` in `GroupResidualInput` (each frame minus the mean of its group of
`input_group_size` frames, same shape; for methods that shuffle frame groups).
MViT has no BatchNorm: bn_groups / bn_momentum / bn_epsilon are accepted and ignored for it, so
callers can pass the same kwargs to every backbone. MViT needs rngs={'dropout': key} when
train=True (stochastic depth).

Frame encoders (`get_frame_encoder`), input `[B, H, W, 3]`: 'resnet50' (2048-d), 'resnet18',
'resnet10' (512-d).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn

from jaxvssl.models.c3d import C3D
from jaxvssl.models.heads import MLPHead
from jaxvssl.models.mvit import MViT
from jaxvssl.models.norm import BatchNorm
from jaxvssl.models.residual import GroupResidualInput, ResidualInput
from jaxvssl.models.resnet2d import ResNet2D
from jaxvssl.models.resnet3d import ResNet3D
from jaxvssl.models.s3d import S3D
from jaxvssl.models.video_transformer import FrameEncoderTransformer, VideoTransformer

__all__ = [
  'BatchNorm',
  'C3D',
  'FrameEncoderTransformer',
  'MLPHead',
  'MViT',
  'ResNet2D',
  'ResNet3D',
  'ResidualInput',
  'S3D',
  'VideoTransformer',
  'available_backbones',
  'available_frame_encoders',
  'feature_dim',
  'get_backbone',
  'get_frame_encoder',
]

# name -> (class, preset fields). Presets are defaults; explicit kwargs override them.
_BACKBONES: Mapping[str, tuple[type, Mapping[str, Any]]] = {
  'c3d': (C3D, {}),
  'r3d10': (ResNet3D, dict(stage_sizes=(1, 1, 1, 1), conv_type='3d')),
  'r3d18': (ResNet3D, dict(stage_sizes=(2, 2, 2, 2), conv_type='3d')),
  'r3d34': (ResNet3D, dict(stage_sizes=(3, 4, 6, 3), conv_type='3d')),
  'r2plus1d10': (ResNet3D, dict(stage_sizes=(1, 1, 1, 1), conv_type='2plus1d')),
  'r2plus1d18': (ResNet3D, dict(stage_sizes=(2, 2, 2, 2), conv_type='2plus1d')),
  's3d': (S3D, {}),
  'mvit_b': (MViT, {}),
  'mvit_b_scvrl': (MViT, dict(patch_kernel=(2, 7, 7), patch_stride=(2, 4, 4))),
  'mvit_tiny': (
    MViT,
    dict(
      embed_dim=16, num_heads=1, depths=(1, 1, 1, 1), patch_kernel=(2, 7, 7), patch_stride=(2, 4, 4)
    ),
  ),
}

_FRAME_ENCODERS: Mapping[str, tuple[type, Mapping[str, Any]]] = {
  'resnet50': (ResNet2D, dict(stage_sizes=(3, 4, 6, 3), bottleneck=True)),
  'resnet18': (ResNet2D, dict(stage_sizes=(2, 2, 2, 2), bottleneck=False)),
  'resnet10': (ResNet2D, dict(stage_sizes=(1, 1, 1, 1), bottleneck=False)),
}

# BatchNorm settings that LayerNorm-only models accept and ignore.
_BN_KWARGS = ('bn_groups', 'bn_momentum', 'bn_epsilon')


def available_backbones() -> tuple[str, ...]:
  """Registered video backbone names."""
  return tuple(sorted(_BACKBONES))


def available_frame_encoders() -> tuple[str, ...]:
  """Registered 2D frame encoder names."""
  return tuple(sorted(_FRAME_ENCODERS))


def _build(
  registry: Mapping[str, tuple[type, Mapping[str, Any]]],
  kind: str,
  name: str,
  kwargs: Mapping[str, Any],
) -> nn.Module:
  if name not in registry:
    raise ValueError(f'jaxvssl.models: unknown {kind} {name!r}; valid names: {sorted(registry)}.')
  cls, preset = registry[name]
  fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in ('parent', 'name')}
  kwargs = dict(kwargs)
  if 'bn_groups' not in fields:
    for key in _BN_KWARGS:
      kwargs.pop(key, None)
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(
      f'jaxvssl.models: {kind} {name!r} ({cls.__name__}) got unknown kwargs '
      f'{unknown}; valid: {sorted(fields)}.'
    )
  return cls(**{**preset, **kwargs})


INPUT_MODES = ('rgb', 'residual', 'group_residual')


def get_backbone(
  name: str, input_mode: str = 'rgb', input_group_size: int = 2, **kwargs: Any
) -> nn.Module:
  """Builds a video backbone by registry name; kwargs override the preset fields.

  input_mode: 'rgb' (frames as they are), 'residual' (`ResidualInput`: frame differences) or
    'group_residual' (`GroupResidualInput`: each frame minus the mean of its group of
    `input_group_size` consecutive frames).
  """
  if input_mode not in INPUT_MODES:
    raise ValueError(f'jaxvssl.models: unknown input_mode {input_mode!r}; valid: {INPUT_MODES}.')
  backbone = _build(_BACKBONES, 'backbone', name, kwargs)
  if input_mode == 'residual':
    return ResidualInput(backbone)
  if input_mode == 'group_residual':
    return GroupResidualInput(backbone, group_size=input_group_size)
  return backbone


def get_frame_encoder(name: str, **kwargs: Any) -> nn.Module:
  """Builds a 2D per-frame encoder ('resnet50', 'resnet18', 'resnet10')."""
  return _build(_FRAME_ENCODERS, 'frame encoder', name, kwargs)


def feature_dim(name: str, width_multiplier: float = 1.0, **kwargs: Any) -> int:
  """Width D of the pooled feature of a backbone or frame encoder (no parameters are built)."""
  registry, kind = (
    (_FRAME_ENCODERS, 'frame encoder') if name in _FRAME_ENCODERS else (_BACKBONES, 'backbone')
  )
  return _build(registry, kind, name, dict(kwargs, width_multiplier=width_multiplier)).feature_dim

"""R3D and R(2+1)D video ResNets (torchvision layouts), flax.linen, NDHWC.

Layout (torchvision `r3d_18` / `r2plus1d_18`, Tran et al. 2018):
  stem    R3D:      conv 3x7x7, stride (1,2,2), 64 ch, BN, ReLU (no max-pool)
          R(2+1)D:  conv 1x7x7, stride (1,2,2), 45 ch, BN, ReLU, conv 3x1x1, 64 ch, BN, ReLU
          'mlfo':   conv 7x7x7, stride (1,2,2), 64 ch, BN, ReLU, max-pool (1,3,3), stride (1,2,2),
                    padding (0,1,1) (the MLFO authors' r3d.py: time is never pooled in the stem,
                    so 16 frames give 16/8/4/2 timesteps at stages 1-4, one per head timestep)
  stage1..4  BasicBlocks with 64/128/256/512 channels (times `width_multiplier`), the first
             block of stages 2-4 has stride 2 on T, H and W (1x1x1 conv + BN shortcut).
  head    global average pool -> [B, 512 * width_multiplier]; no classifier (heads.py).

R(2+1)D factorises every 3x3x3 conv into 1x3x3 (stride (1,s,s)) -> BN -> ReLU -> 3x1x1
(stride (s,1,1)) with the torchvision middle width `(in * out * 27) // (in * 9 + 3 * out)`,
computed once per block from the block's input and output widths and used by both of its convs.

With 16x112x112 input, stage outputs are: stem [B,16,56,56,64], stage1 [B,16,56,56,64],
stage2 [B,8,28,28,128], stage3 [B,4,14,14,256], stage4 [B,2,7,7,512]; with stem='mlfo' the
same timesteps at half the side: stem [B,16,28,28,64] ... stage4 [B,2,4,4,512].
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.attention import check_remat_stages, maybe_remat
from jaxvssl.models.norm import backbone_outputs, conv_bn_factory, max_pool, scaled_width

Dtype = Any

STAGE_WIDTHS = (64, 128, 256, 512)
R2PLUS1D_STEM_MID = 45  # torchvision hard-codes 45 for the R(2+1)D stem (not the formula)


def r2plus1d_mid_width(in_channels: int, out_channels: int) -> int:
  """Middle width of a (2+1)D block so its params match a 3x3x3 conv: (in*out*27)//(in*9+3*out)."""
  return (in_channels * out_channels * 27) // (in_channels * 9 + 3 * out_channels)


class BasicBlock3D(nn.Module):
  """ResNet basic block with 3x3x3 ('3d') or factorised (2+1)D convs. `[B,T,H,W,Cin]` ->
  `[B,T/s,H/s,W/s,features]`."""

  features: int
  stride: int
  conv_type: str  # '3d' | '2plus1d'
  conv_bn: Any  # ConvBN with the backbone's settings bound (`norm.conv_bn_factory`)

  def _conv(self, x, features, mid, stride, relu, train, name):
    if self.conv_type == '3d':
      return self.conv_bn(features, (3, 3, 3), (stride,) * 3, relu=relu, name=name)(x, train)
    # (2+1)D: spatial 1x3x3 then temporal 3x1x1; the inner BN+ReLU belongs to the factorisation.
    x = self.conv_bn(mid, (1, 3, 3), (1, stride, stride), relu=True, name=f'{name}_s')(x, train)
    return self.conv_bn(features, (3, 1, 1), (stride, 1, 1), relu=relu, name=f'{name}_t')(x, train)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    in_features = x.shape[-1]
    mid = r2plus1d_mid_width(in_features, self.features)
    y = self._conv(x, self.features, mid, self.stride, True, train, 'conv1')
    y = self._conv(y, self.features, mid, 1, False, train, 'conv2')
    if self.stride != 1 or in_features != self.features:
      x = self.conv_bn(self.features, (1, 1, 1), (self.stride,) * 3, relu=False, name='downsample')(
        x, train
      )
    return nn.relu(x + y)


class ResNet3D(nn.Module):
  """Video ResNet backbone (R3D / R(2+1)D), input `[B, T, H, W, 3]`.

  Attributes:
    stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for the -18 variants.
    conv_type: '3d' (R3D) or '2plus1d' (R(2+1)D).
    stem: 'torchvision' (the layout of `conv_type`) or 'mlfo' (7x7x7 + spatial max-pool).
    stem_temporal: (kernel, stride) on T of the R3D 'torchvision' stem conv, padded (kernel-1)//2
      on each side as PyTorch's MViT cube embedding. (3, 1) is torchvision's. (2, 2) makes each
      stem output see exactly one 2-frame group, the R3D analogue of SCVRL's kt=2 cube embedding
      (Table 8e compares it with (3, 2), whose outputs straddle the groups' seams).
    width_multiplier: scales every width (rounded, >= 1 channel).
    bn_groups, bn_momentum, bn_epsilon: see `jaxvssl.models.norm.BatchNorm`.
    dtype: computation dtype (e.g. jnp.bfloat16); param_dtype: parameter dtype.
    remat_stages: stages (1..4) whose blocks are rematerialised (`nn.remat`): activations are
      recomputed in the backward pass; same parameters and gradients.
  """

  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  conv_type: str = '3d'
  stem: str = 'torchvision'
  stem_temporal: tuple[int, int] = (3, 1)
  width_multiplier: float = 1.0
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  remat_stages: Sequence[int] = ()

  @property
  def feature_dim(self) -> int:
    """Width of the pooled feature (512 * width_multiplier)."""
    return scaled_width(STAGE_WIDTHS[-1], self.width_multiplier)

  def _stem(self, x, conv_bn, train):
    w = lambda c: scaled_width(c, self.width_multiplier)
    if self.stem == 'mlfo':
      x = conv_bn(w(64), (7, 7, 7), (1, 2, 2), name='stem_conv')(x, train)
      # Spatial only (kernel 1 on T): MLFO's per-timestep heads and timestamp retrieval need
      # every input frame's timestep at stage 1.
      return max_pool(x, (1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1)))
    if self.conv_type == '3d':
      kt, st = self.stem_temporal
      pt = (kt - 1) // 2
      return conv_bn(
        w(64), (kt, 7, 7), (st, 2, 2), padding=((pt, pt), (3, 3), (3, 3)), name='stem_conv'
      )(x, train)
    x = conv_bn(w(R2PLUS1D_STEM_MID), (1, 7, 7), (1, 2, 2), name='stem_conv_s')(x, train)
    return conv_bn(w(64), (3, 1, 1), (1, 1, 1), name='stem_conv_t')(x, train)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    """Encodes a clip.

    Args:
      x: `[B, T, H, W, C]` normalised frames.
      train: batch statistics (and their running update) if True, running statistics if False.
      return_stages: also return the intermediate maps.

    Returns:
      `[B, D]` globally average-pooled last map (D = 512 * width_multiplier); with
      return_stages=True a tuple `(feature, stages)` where stages has 'stem' and
      'stage1'..'stage4' (`[B, T', H', W', C]` maps) and 'pool5' (`[B, D]`: the last map
      max-pooled over H, W then averaged over T, the VCOP/CACL retrieval feature).
    """
    if self.conv_type not in ('3d', '2plus1d'):
      raise ValueError(
        f"jaxvssl/models/resnet3d.py: conv_type must be '3d' or '2plus1d', got {self.conv_type!r}."
      )
    if self.stem not in ('torchvision', 'mlfo'):
      raise ValueError(
        f"jaxvssl/models/resnet3d.py: stem must be 'torchvision' or 'mlfo', got {self.stem!r}."
      )
    if self.stem_temporal != (3, 1) and (self.stem, self.conv_type) != ('torchvision', '3d'):
      raise ValueError(
        'jaxvssl/models/resnet3d.py: stem_temporal applies to the R3D torchvision stem only, '
        f'got stem={self.stem!r}, conv_type={self.conv_type!r}.'
      )
    if x.ndim != 5:
      raise ValueError(f'jaxvssl/models/resnet3d.py: input must be [B,T,H,W,C], got {x.shape}.')
    remat = check_remat_stages(
      self.remat_stages, len(self.stage_sizes), 'jaxvssl/models/resnet3d.py'
    )
    conv_bn = conv_bn_factory(self)
    x = x.astype(self.dtype)
    stages = {'stem': self._stem(x, conv_bn, train)}
    x = stages['stem']
    for i, (num_blocks, width) in enumerate(zip(self.stage_sizes, STAGE_WIDTHS)):
      block = maybe_remat(BasicBlock3D, i + 1 in remat, (2,))  # train (positional): static
      for j in range(num_blocks):
        x = block(
          scaled_width(width, self.width_multiplier),
          stride=2 if (i > 0 and j == 0) else 1,
          conv_type=self.conv_type,
          conv_bn=conv_bn,
          name=f'stage{i + 1}_block{j}',
        )(x, train)
      stages[f'stage{i + 1}'] = x
    return backbone_outputs(x, stages, return_stages)

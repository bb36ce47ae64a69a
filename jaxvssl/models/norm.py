"""Batch normalisation with statistics over groups of the batch ("ghost" batches).

flax's `nn.BatchNorm` reduces over the whole (global) batch. Video SSL recipes were written for
data-parallel PyTorch, where every device normalises with its OWN batch statistics (and MoCo's
shuffle-BN relies on exactly that). Under `jax.jit` over a mesh, the batch is one global array,
so per-device statistics must be requested explicitly: this module splits the batch axis into
`num_groups` contiguous groups and normalises every group with its own mean and variance.

  * `num_groups=1`: global batch statistics (numerically the same as `flax.linen.BatchNorm`).
  * `num_groups=jax.device_count()` (or the size of the mesh 'data' axis): exact per-device
    statistics, because the batch is sharded contiguously over the 'data' axis, so group g is
    exactly the shard of device g and XLA keeps the reductions local.

Running statistics are ONE variable (not one per group), updated with the mean over groups of the
group statistics, so they are replicated and always in sync for evaluation and export.
Statistics are computed in float32 whatever the computation dtype; variance is the biased
(population) variance, as in flax (PyTorch stores the unbiased one in its running_var).

The module also holds the pieces every CNN backbone (C3D, R3D, R(2+1)D, S3D, 2D ResNet) is built
from: `ConvBN` (and `conv_bn_factory`, which binds a backbone's BatchNorm settings and dtypes),
`max_pool`, `scaled_width`, and the pooled outputs `global_avg_pool`, `spatial_max_temporal_mean`
and `backbone_outputs`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.conv import Conv

Dtype = Any
Initializer = Callable[..., jax.Array]


class BatchNorm(nn.Module):
  """Grouped ("ghost") batch normalisation over the last (channel) axis.

  Input `[B, ..., C]` (any number of middle axes, e.g. `[B, T, H, W, C]` or `[B, C]`); output of
  the same shape in `dtype` (default: the input dtype).

  Attributes:
    num_groups: number of contiguous groups the batch axis is split into; B must be divisible.
    momentum: running-average decay (flax convention; PyTorch momentum 0.1 == 0.9 here).
    epsilon: added to the variance.
    use_scale, use_bias: learn gamma / beta ('params' collection, `param_dtype`).
    axis_name: optional collective axis (shard_map / pmap / vmap). Only the running-statistics
      update is averaged over it, so the running statistics stay replicated; the normalisation
      itself uses the local group statistics (per-device semantics).
    dtype: output/computation dtype (None: the input dtype). Statistics are always float32.
    param_dtype: dtype of gamma/beta.
  """

  num_groups: int = 1
  momentum: float = 0.9
  epsilon: float = 1e-5
  use_scale: bool = True
  use_bias: bool = True
  scale_init: Initializer = nn.initializers.ones
  bias_init: Initializer = nn.initializers.zeros
  axis_name: Optional[str] = None
  dtype: Optional[Dtype] = None
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    """Normalises `x` `[B, ..., C]`.

    Args:
      x: input; the batch axis is axis 0, the channel axis is the last one.
      use_running_average: True at evaluation (use 'batch_stats'), False in training.

    Returns:
      The normalised `[B, ..., C]` array.
    """
    if x.ndim < 2:
      raise ValueError(
        f'jaxvssl/models/norm.py BatchNorm: input must be [B, ..., C], got shape {x.shape}.'
      )
    if self.num_groups < 1:
      raise ValueError(
        f'jaxvssl/models/norm.py BatchNorm: num_groups must be >= 1, got {self.num_groups}.'
      )
    channels = x.shape[-1]
    out_dtype = self.dtype or x.dtype

    ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, (channels,), jnp.float32)
    ra_var = self.variable('batch_stats', 'var', jnp.ones, (channels,), jnp.float32)
    scale = (
      self.param('scale', self.scale_init, (channels,), self.param_dtype)
      if self.use_scale
      else None
    )
    bias = (
      self.param('bias', self.bias_init, (channels,), self.param_dtype) if self.use_bias else None
    )

    x32 = x.astype(jnp.float32)
    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
      y = (x32 - mean) * self._multiplier(var, scale)
    else:
      batch = x.shape[0]
      if batch % self.num_groups:
        raise ValueError(
          f'jaxvssl/models/norm.py BatchNorm: batch size {batch} is not divisible by '
          f'num_groups={self.num_groups} (model config key bn_groups); use a global batch '
          'that is a multiple of the number of BatchNorm groups / devices.'
        )
      # [B, ..., C] -> [G, B/G, ..., C]: group g is the g-th contiguous slice of the batch,
      # which is exactly device g's shard when the batch is sharded over the 'data' axis.
      xg = x32.reshape((self.num_groups, batch // self.num_groups) + x.shape[1:])
      axes = tuple(range(1, xg.ndim - 1))
      mean = jnp.mean(xg, axis=axes, keepdims=True)  # [G, 1, ..., 1, C]
      # Two-pass variance: numerically safer than E[x^2] - E[x]^2 for large activations.
      var = jnp.mean(jnp.square(xg - mean), axis=axes, keepdims=True)  # [G, 1, ..., 1, C]
      y = ((xg - mean) * self._multiplier(var, scale)).reshape(x.shape)

      if not self.is_initializing():
        # One replicated running estimate: the mean of the group statistics.
        new_mean = jnp.mean(mean.reshape(self.num_groups, channels), axis=0)
        new_var = jnp.mean(var.reshape(self.num_groups, channels), axis=0)
        if self.axis_name is not None:
          new_mean = jax.lax.pmean(new_mean, self.axis_name)
          new_var = jax.lax.pmean(new_var, self.axis_name)
        ra_mean.value = self.momentum * ra_mean.value + (1.0 - self.momentum) * new_mean
        ra_var.value = self.momentum * ra_var.value + (1.0 - self.momentum) * new_var

    if bias is not None:
      y = y + bias.astype(jnp.float32)
    return y.astype(out_dtype)

  def _multiplier(self, var: jax.Array, scale: Optional[jax.Array]) -> jax.Array:
    mul = jax.lax.rsqrt(var + self.epsilon)
    if scale is not None:
      mul = mul * scale.astype(jnp.float32)
    return mul


# ------------------------------------------------------------------------------------------------
# Conv + BatchNorm (+ ReLU): the unit every CNN backbone (C3D, R3D, R(2+1)D, S3D, 2D ResNet) uses.


def scaled_width(channels: int, width_multiplier: float) -> int:
  """`channels * width_multiplier` rounded to the nearest int, at least 1 channel."""
  return max(1, int(round(channels * width_multiplier)))


def torch_padding(kernel_size: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
  """Symmetric `k // 2` padding per axis (PyTorch convention; flax 'SAME' pads asymmetrically
  for strided convs, which would shift every feature map by half a pixel)."""
  return tuple((k // 2, k // 2) for k in kernel_size)


# He-normal with fan_out, as torchvision initialises its (video) ResNets.
conv_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


class ConvBN(nn.Module):
  """Bias-free convolution -> grouped BatchNorm -> optional ReLU, channels-last.

  The convolution is `jaxvssl.models.conv.Conv` (the fastest formulation per platform, the
  parameters of `nn.Conv`: 'conv/kernel').

  Input `[B, *spatial, C_in]` (1 to 3 spatial axes, given by `len(kernel_size)`), output
  `[B, *spatial', features]`. Padding defaults to the symmetric PyTorch `k // 2`.
  """

  features: int
  kernel_size: tuple[int, ...]
  strides: Optional[tuple[int, ...]] = None
  padding: Optional[tuple[tuple[int, int], ...]] = None
  relu: bool = True
  feature_group_count: int = 1
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bn_scale_init: Initializer = nn.initializers.ones
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    kernel = tuple(self.kernel_size)
    x = Conv(
      self.features,
      kernel,
      strides=self.strides or (1,) * len(kernel),
      padding=self.padding if self.padding is not None else torch_padding(kernel),
      feature_group_count=self.feature_group_count,
      use_bias=False,
      kernel_init=conv_kernel_init,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv',
    )(x)
    x = BatchNorm(
      num_groups=self.bn_groups,
      momentum=self.bn_momentum,
      epsilon=self.bn_epsilon,
      scale_init=self.bn_scale_init,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='bn',
    )(x, use_running_average=not train)
    return nn.relu(x) if self.relu else x


def conv_bn_factory(cnn: nn.Module, remat: bool = False, **fixed: Any) -> Callable[..., ConvBN]:
  """`ConvBN` with the BatchNorm settings and dtypes of the backbone `cnn` bound.

  `cnn` has the fields bn_groups, bn_momentum, bn_epsilon, dtype and param_dtype; `fixed` binds
  further `ConvBN` arguments (e.g. kernel_size) shared by all of its convolutions. remat=True:
  each ConvBN is wrapped in `nn.remat` (its activations are recomputed in the backward pass;
  same parameter paths); it must then be called as `(x, train)`, train positional.
  """
  return functools.partial(
    nn.remat(ConvBN, static_argnums=(2,)) if remat else ConvBN,
    bn_groups=cnn.bn_groups,
    bn_momentum=cnn.bn_momentum,
    bn_epsilon=cnn.bn_epsilon,
    dtype=cnn.dtype,
    param_dtype=cnn.param_dtype,
    **fixed,
  )


def max_pool(
  x: jax.Array,
  window: tuple[int, ...],
  strides: tuple[int, ...],
  padding: tuple[tuple[int, int], ...] | None = None,
  clamp_to_input: bool = False,
) -> jax.Array:
  """Max-pool `[B, *spatial, C]` with PyTorch semantics (-inf padding, floor output size).

  With `clamp_to_input=True`, an axis whose padded size is smaller than the window is left
  unpooled (window 1, stride 1, no padding) instead of producing an empty output. This only
  changes inputs smaller than the layout was designed for (tiny CPU clips); shapes are static,
  so this is decided at trace time and is jit-safe.
  """
  padding = padding if padding is not None else tuple((0, 0) for _ in window)
  if clamp_to_input:
    window, strides, padding = list(window), list(strides), list(padding)
    for axis, size in enumerate(x.shape[1:-1]):
      if size + sum(padding[axis]) < window[axis]:
        window[axis], strides[axis], padding[axis] = 1, 1, (0, 0)
    window, strides, padding = tuple(window), tuple(strides), tuple(padding)
  return nn.max_pool(x, window, strides=strides, padding=padding)


# ------------------------------------------------------------------------------------------------
# Pooled outputs of the CNN backbones.


def global_avg_pool(x: jax.Array) -> jax.Array:
  """Mean over all spatio-temporal axes, in float32. `[B, ..., C]` -> `[B, C]`."""
  axes = tuple(range(1, x.ndim - 1))
  return jnp.mean(x.astype(jnp.float32), axis=axes).astype(x.dtype)


def spatial_max_temporal_mean(x: jax.Array) -> jax.Array:
  """The 'pool5' retrieval feature: max over H, W then mean over T. `[B,T,H,W,C]` -> `[B,C]`."""
  return jnp.mean(jnp.max(x.astype(jnp.float32), axis=(2, 3)), axis=1).astype(x.dtype)


def backbone_outputs(x: jax.Array, stages: dict[str, jax.Array], return_stages: bool) -> Any:
  """What a video CNN backbone returns from its last map `x` `[B, T, H, W, C]`.

  `global_avg_pool(x)` `[B, C]`; with return_stages=True the tuple `(feature, stages)`, where
  `stages` gains 'pool5' = `spatial_max_temporal_mean(x)` (the VCOP/CACL retrieval feature).
  """
  feature = global_avg_pool(x)
  if not return_stages:
    return feature
  stages['pool5'] = spatial_max_temporal_mean(x)
  return feature, stages

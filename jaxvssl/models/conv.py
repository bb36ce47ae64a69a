"""One convolution for every backbone: `conv` (functional) and `Conv` (drop-in for `nn.Conv`).

Why: XLA:CPU runs 3D convolutions through a slow generic path, differentiates a strided
convolution into an lhs-dilated one that is slower still, and computes kernel gradients as a
convolution whose 'kernel' is the whole output map (jax 0.10.2, 2 threads, the tiny R3D-10: a
stride-2 3x3x3 conv took 341 ms forward+backward against PyTorch's 8 ms). Its 2D convolutions
and its matmuls are fast. So on CPU every convolution here is one 2D convolution, one matmul or
one elementwise sum, with the same result and the same parameters:

  impl        'auto' on CPU uses it for            formulation
  'dot'       kernel 1 on every axis, groups 1     strided slice, then one matmul
                                                   `[N*T'*H'*W', Cin] @ [Cin, Cout]`
  'fold'      every other 3D or 2D conv, groups 1  the kt temporal taps folded into channels:
                                                   the kt strided time slices of the padded
                                                   input are stacked on the channel axis and ONE
                                                   2D conv (kernel `[kh, kw, kt*Cin, Cout]`,
                                                   the spatial stride) runs on the `N*T'` images
                                                   (a matmul if kh = kw = 1); a 2D conv is the
                                                   case T = kt = 1. Custom gradient, below.
  'depthwise' groups == Cin == Cout (MViT pooling, sum over the kernel taps of strided slices
              motion excitation)                   times the per-channel weights: elementwise,
                                                   10-40x faster than XLA's grouped conv
  'xla'       1D and grouped (not depthwise)       `lax.conv_general_dilated` as is
              convs; every conv on GPU / TPU

'fold' has a `jax.custom_vjp` (residuals: the input and the kernel, as for a plain conv). The
input gradient is XLA's transpose of the folded 2D conv (fast, also with a stride: a 2D
lhs-dilated conv, not a 3D one). The kernel gradient is XLA's on small maps and, on maps of
>= 512 output pixels per image or for kt x 1 x 1 kernels, a loop of im2col blocks times matmuls
(`_fold_kernel_grad`), 2-5x faster there (R3D-18 stage 1 at 112 px: 0.7 s against 2.1 s). The
measurements behind every choice: `scripts/bench_step.py` (per layer: `--parts=layers`).
Forward-mode differentiation (`jax.jvp`) of 'fold' is not supported (custom_vjp); force
`impl='xla'` for that.

Choosing: the implementation is picked at trace time. Precedence: the `impl` argument, then
`conv_impl(...)` (a context manager), then the environment variable `JAXVSSL_CONV_IMPL`
('auto' or 'xla'), then 'auto'. 'auto' uses 'xla' unless the platform is CPU (the platform of
a concrete input array, else `jax.default_backend()`). A function that is already jit-compiled
keeps the implementation it was traced with.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen import dtypes as flax_dtypes
from jax import lax

Dtype = Any
Initializer = Callable[..., jax.Array]
PaddingLike = Union[str, int, Sequence[Union[int, tuple[int, int]]]]

IMPLS = ('auto', 'xla', 'dot', 'fold', 'depthwise')
ENV_VAR = 'JAXVSSL_CONV_IMPL'
_FORCEABLE = ('auto', 'xla')  # what the environment variable and `conv_impl` accept

_override = threading.local()


@contextlib.contextmanager
def conv_impl(impl: str) -> Iterator[None]:
  """Within the block, convolutions traced without an explicit `impl` use `impl` ('auto'/'xla').

  It acts at trace time: call (or first jit-compile) the function inside the block.
  """
  if impl not in _FORCEABLE:
    raise ValueError(f'jaxvssl/models/conv.py: conv_impl({impl!r}): use one of {_FORCEABLE}.')
  previous = getattr(_override, 'impl', None)
  _override.impl = impl
  try:
    yield
  finally:
    _override.impl = previous


def requested_impl() -> str:
  """The implementation asked for by `conv_impl` or `$JAXVSSL_CONV_IMPL` (default 'auto')."""
  impl = getattr(_override, 'impl', None)
  if impl is not None:
    return impl
  impl = os.environ.get(ENV_VAR, 'auto').strip().lower() or 'auto'
  if impl not in _FORCEABLE:
    raise ValueError(f'jaxvssl/models/conv.py: ${ENV_VAR}={impl!r}; use one of {_FORCEABLE}.')
  return impl


def _platform(x: Any) -> str:
  """Platform that `x` lives on (a concrete array) or the default backend (under tracing)."""
  if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
    try:
      return next(iter(x.devices())).platform
    except Exception:  # pylint: disable=broad-except  (deleted or abstract arrays)
      pass
  return jax.default_backend()


def as_tuple(value: Optional[Union[int, Sequence[int]]], n: int, name: str) -> tuple[int, ...]:
  """Strides (or any per-axis int) as `n` ints: None -> 1s, an int -> repeated (flax rules)."""
  if value is None:
    return (1,) * n
  if isinstance(value, (int, np.integer)):
    return (int(value),) * n
  value = tuple(int(v) for v in value)
  if len(value) != n:
    raise ValueError(f'jaxvssl/models/conv.py: {name}={value} must have {n} entries.')
  return value


def explicit_padding(
  padding: PaddingLike,
  in_spatial: Sequence[int],
  kernel_size: Sequence[int],
  strides: Sequence[int],
  dilation: Optional[Sequence[int]] = None,
) -> tuple[tuple[int, int], ...]:
  """`padding` as one `(low, high)` pair per spatial axis.

  Accepts what the backbones pass to `nn.Conv`: 'SAME', 'VALID', an int (both sides of every
  axis), a sequence of ints (both sides) or of `(low, high)` pairs.
  """
  n = len(kernel_size)
  if isinstance(padding, str):
    mode = padding.upper()
    if mode not in ('SAME', 'VALID', 'SAME_LOWER'):
      raise ValueError(
        f'jaxvssl/models/conv.py: padding {padding!r} is not supported '
        "(use 'SAME', 'VALID', an int or explicit pairs)."
      )
    dilation = tuple(dilation or (1,) * n)
    dilated = tuple((k - 1) * d + 1 for k, d in zip(kernel_size, dilation))
    return tuple(
      tuple(int(p) for p in pair)
      for pair in lax.padtype_to_pads(tuple(in_spatial), dilated, tuple(strides), mode)
    )
  if isinstance(padding, (int, np.integer)):
    return ((int(padding), int(padding)),) * n
  pads = []
  for p in padding:
    if isinstance(p, (int, np.integer)):
      pads.append((int(p), int(p)))
    else:
      low, high = p
      pads.append((int(low), int(high)))
  if len(pads) != n:
    raise ValueError(f'jaxvssl/models/conv.py: padding {padding} must have {n} entries.')
  return tuple(pads)


def _dimension_numbers(num_spatial: int) -> lax.ConvDimensionNumbers:
  spatial = 'DHW'[-num_spatial:] if num_spatial <= 3 else None
  if spatial is None:
    raise ValueError(f'jaxvssl/models/conv.py: {num_spatial} spatial axes; at most 3.')
  return lax.conv_dimension_numbers(
    (1,) * (num_spatial + 2),
    (1,) * (num_spatial + 2),
    (f'N{spatial}C', f'{spatial}IO', f'N{spatial}C'),
  )


def _xla(x, kernel, strides, pads, groups, precision, preferred):
  return lax.conv_general_dilated(
    x,
    kernel,
    strides,
    pads,
    dimension_numbers=_dimension_numbers(kernel.ndim - 2),
    feature_group_count=groups,
    precision=precision,
    preferred_element_type=preferred,
  )


def _out_size(size: int, k: int, s: int, pad: tuple[int, int]) -> int:
  return (size + pad[0] + pad[1] - k) // s + 1


def _strided_window(
  x: jax.Array, offsets: Sequence[int], counts: Sequence[int], strides: Sequence[int]
) -> jax.Array:
  """`x[:, o0::s0][:c0], ...` on the spatial axes 1..n of `[N, *spatial, C]`."""
  start = (0,) + tuple(offsets) + (0,)
  limit = (
    (x.shape[0],)
    + tuple(o + s * (c - 1) + 1 for o, c, s in zip(offsets, counts, strides))
    + (x.shape[-1],)
  )
  step = (1,) + tuple(strides) + (1,)
  return lax.slice(x, start, limit, step)


def _dot(x, kernel, strides, pads, groups, precision, preferred):
  """1 x ... x 1 kernel: crop/pad, strided slice, one matmul."""
  del groups  # only chosen for groups == 1
  x = jnp.pad(x, ((0, 0),) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads) + ((0, 0),))
  # Negative padding crops: start later / stop earlier.
  offsets = [max(-lo, 0) for lo, _ in pads]
  counts = [
    _out_size(size - max(-lo, 0) - max(-hi, 0), 1, s, (0, 0))
    for size, (lo, hi), s in zip(x.shape[1:-1], pads, strides)
  ]
  x = _strided_window(x, offsets, counts, strides)
  w = kernel.reshape(kernel.shape[-2:])
  return lax.dot_general(
    x,
    w,
    (((x.ndim - 1,), (0,)), ((), ())),
    precision=precision,
    preferred_element_type=preferred,
  ).reshape(x.shape[:1] + tuple(counts) + (kernel.shape[-1],))


def _time_taps(t: int, kt: int, st: int, pad: tuple[int, int]) -> tuple[int, list[int]]:
  """Output length and the temporal taps that see at least one real (unpadded) frame."""
  lo, _ = pad
  t_out = _out_size(t, kt, st, pad)
  taps = [i for i in range(kt) if any(0 <= st * o + i - lo < t for o in range(t_out))]
  return t_out, taps


def _fold_operands(
  x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads, groups: int
) -> tuple[jax.Array, jax.Array]:
  """`[N,T,H,W,C]`, `[kt,kh,kw,C/G,O]` -> `[N*T',H,W,n*C]`, `[kh,kw,n*C/G,O]` (n used taps)."""
  n_batch, t = x.shape[:2]
  kt, st = kernel.shape[0], strides[0]
  t_out, taps = _time_taps(t, kt, st, pads[0])
  if not taps:  # every tap reads padding only: a zero map; keep one tap for the shapes
    taps = [0]
  lo, hi = pads[0]
  x = jnp.pad(x, ((0, 0), (max(lo, 0), max(hi, 0)), (0, 0), (0, 0), (0, 0)))
  base = max(lo, 0) - lo  # >0 when the padding is negative (cropping)
  slices = [_strided_window(x, (base + i, 0, 0), (t_out,) + x.shape[2:4], (st, 1, 1)) for i in taps]
  c = x.shape[-1]
  if len(slices) == 1:
    folded = slices[0]
  else:
    folded = jnp.stack(slices, axis=-2)  # [N, T', H, W, n, C]
    if groups > 1:  # each group's channels stay contiguous: [.., G, n, C/G]
      shape = folded.shape[:-2]
      folded = folded.reshape(shape + (len(taps), groups, c // groups))
      folded = jnp.swapaxes(folded, -3, -2)
    folded = folded.reshape(folded.shape[:4] + (len(taps) * c,))
  folded = folded.reshape((n_batch * t_out,) + folded.shape[2:])
  w = jnp.take(kernel, np.asarray(taps), axis=0) if len(taps) < kt else kernel
  w = jnp.moveaxis(w, 0, 2)  # [kh, kw, n, C/G, O]
  w = w.reshape(w.shape[:2] + (len(taps) * w.shape[3], w.shape[4]))
  return folded, w


def _fold_forward(x: jax.Array, kernel: jax.Array, spec: tuple) -> jax.Array:
  """The folded 2D conv, `[N, T, H, W, C]` -> `[N, T', H', W', O]`."""
  strides, pads, groups, precision, preferred = spec
  n_batch, t = x.shape[:2]
  t_out, _ = _time_taps(t, kernel.shape[0], strides[0], pads[0])
  folded, w = _fold_operands(x, kernel, strides, pads, groups)
  if groups == 1 and w.shape[0] * w.shape[1] == 1:
    # A kt x 1 x 1 kernel folds into a 1x1 conv: a matmul, 2-5x faster than XLA:CPU's conv.
    y = _dot(folded, w, strides[1:], pads[1:], groups, precision, preferred)
  else:
    y = _xla(folded, w, strides[1:], pads[1:], groups, precision, preferred)
  return y.reshape((n_batch, t_out) + y.shape[1:])


# Rows of the im2col block of one step of the kernel-gradient loop (`_fold_kernel_grad`).
_KERNEL_GRAD_ROWS = 4096


def _fold_kernel_grad(x: jax.Array, kernel: jax.Array, dy: jax.Array, spec: tuple) -> jax.Array:
  """d kernel of the folded conv (groups 1) as a loop of im2col blocks times matmuls.

  XLA:CPU differentiates a conv w.r.t. its kernel into a convolution whose 'kernel' is the
  whole output map; for large maps that runs at a fraction of the matmul speed (R3D-18 stage 1
  at 112 px: 2.1 s against 0.7 s for this). Here the `N*T'` folded images are cut into blocks
  of about `_KERNEL_GRAD_ROWS` output pixels; per block, the kh*kw shifted windows are
  concatenated (`[rows, kh*kw*n*C]`) and multiplied with the block of `dy` (`[rows, O]`),
  accumulated over a `lax.scan`, so the memory is one block's, not kh*kw copies of the input.
  A 1x1 spatial window (kt x 1 x 1 kernels) is one matmul over all pixels.
  """
  strides, pads, _, precision, _ = spec
  kt, kh, kw, c_in, c_out = kernel.shape
  taps = _time_taps(x.shape[1], kt, strides[0], pads[0])[1] or [0]
  folded, _ = _fold_operands(x, kernel, strides, pads, 1)  # [N*T', H, W, n*C]
  (lo_h, hi_h), (lo_w, hi_w) = pads[1:]
  folded = jnp.pad(
    folded, ((0, 0), (max(lo_h, 0), max(hi_h, 0)), (max(lo_w, 0), max(hi_w, 0)), (0, 0))
  )
  base = (max(lo_h, 0) - lo_h, max(lo_w, 0) - lo_w)
  n_img, h_out, w_out = dy.shape[0] * dy.shape[1], dy.shape[2], dy.shape[3]
  k = folded.shape[-1]
  acc_dtype = jnp.promote_types(dy.dtype, jnp.float32)
  dims = (((0,), (0,)), ((), ()))
  if kh * kw == 1:  # no window to copy: one matmul `[rows, n*C]^T @ [rows, O]`
    window = _strided_window(folded, base, (h_out, w_out), strides[1:]).reshape(-1, k)
    acc = lax.dot_general(
      window, dy.reshape(-1, c_out), dims, precision=precision, preferred_element_type=acc_dtype
    )
    return _place_taps(acc.reshape(1, 1, len(taps), c_in, c_out), taps, kt, kernel.dtype)
  block = max(1, min(n_img, _KERNEL_GRAD_ROWS // (h_out * w_out)))
  while n_img % block:
    block -= 1
  imgs = folded.reshape((n_img // block, block) + folded.shape[1:])
  dys = dy.reshape(n_img // block, block * h_out * w_out, c_out)

  def step(acc, inputs):
    img, d = inputs
    cols = [
      _strided_window(img, (base[0] + i, base[1] + j), (h_out, w_out), strides[1:])
      for i in range(kh)
      for j in range(kw)
    ]
    patches = jnp.concatenate(cols, axis=-1).reshape(block * h_out * w_out, kh * kw * k)
    grad = lax.dot_general(patches, d, dims, precision=precision, preferred_element_type=acc_dtype)
    return acc + grad, None

  acc, _ = lax.scan(step, jnp.zeros((kh * kw * k, c_out), acc_dtype), (imgs, dys))
  return _place_taps(acc.reshape(kh, kw, len(taps), c_in, c_out), taps, kt, kernel.dtype)


def _place_taps(grad: jax.Array, taps: list[int], kt: int, dtype: Dtype) -> jax.Array:
  """`[kh, kw, n, C, O]` gradient of the used temporal taps -> `[kt, kh, kw, C, O]` in `dtype`."""
  grad = jnp.moveaxis(grad, 2, 0)
  if len(taps) < kt:  # taps that only read padding get no gradient
    full = jnp.zeros((kt,) + grad.shape[1:], grad.dtype)
    grad = full.at[np.asarray(taps)].set(grad)
  return grad.astype(dtype)


def _use_im2col_kernel_grad(
  dy_shape: Sequence[int], kernel_shape: Sequence[int], groups: int
) -> bool:
  """Whether `_fold_kernel_grad` beats XLA's kernel gradient (measured, jax 0.10.2, 2 cores).

  Always for a 1x1 spatial window (kt x 1 x 1: the block loop is a chunked matmul, 3-5x faster
  than XLA's), otherwise from 512 output pixels per image on (R3D-18 at 112 px: 2-3x faster
  at 56x56 and 28x28 maps). XLA's is as fast or faster on small maps (the tiny R3D-10 at 32 px,
  14x14 maps at 112 px). Grouped convolutions keep XLA's.
  """
  if groups != 1:
    return False
  return kernel_shape[1] * kernel_shape[2] == 1 or dy_shape[2] * dy_shape[3] >= 512


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _fold_vjp(x: jax.Array, kernel: jax.Array, spec: tuple) -> jax.Array:
  return _fold_forward(x, kernel, spec)


def _fold_vjp_fwd(x, kernel, spec):
  return _fold_forward(x, kernel, spec), (x, kernel)


def _fold_vjp_bwd(spec, residuals, dy):
  x, kernel = residuals
  # d input: XLA's transpose of the 2D conv (then of the fold: pads and adds). Linear in x, so
  # only the kernel enters; the primal computation inside `jax.vjp` is dead code under jit.
  _, vjp_x = jax.vjp(lambda x: _fold_forward(x, kernel, spec), x)
  (dx,) = vjp_x(dy)
  if _use_im2col_kernel_grad(dy.shape, kernel.shape, spec[2]):
    dk = _fold_kernel_grad(x, kernel, dy, spec)
  else:
    _, vjp_k = jax.vjp(lambda k: _fold_forward(x, k, spec), kernel)
    (dk,) = vjp_k(dy)
  return dx, dk


_fold_vjp.defvjp(_fold_vjp_fwd, _fold_vjp_bwd)


def _fold(x, kernel, strides, pads, groups, precision, preferred):
  """3D conv as ONE 2D conv: temporal taps folded into the channel axis (custom gradient).

  A 2D conv runs as a 3D conv with one frame and kt = 1 (the same XLA forward, and the faster
  kernel gradient on large maps).
  """
  if kernel.ndim == 4:
    y = _fold(
      x[:, None],
      kernel[None],
      (1,) + tuple(strides),
      ((0, 0),) + tuple(pads),
      groups,
      precision,
      preferred,
    )
    return y[:, 0]
  spec = (tuple(strides), tuple(pads), groups, precision, preferred)
  return _fold_vjp(x, kernel, spec)


def _depthwise(x, kernel, strides, pads, groups, precision, preferred):
  """groups == Cin == Cout: sum over kernel taps of (strided slice) * (per-channel weight)."""
  del groups, precision
  k = kernel.shape[:-2]
  x = jnp.pad(x, ((0, 0),) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads) + ((0, 0),))
  base = [max(lo, 0) - lo for lo, _ in pads]
  # x was padded by max(p, 0); count from the original size.
  counts = [
    _out_size(size - max(lo, 0) - max(hi, 0), kk, s, (lo, hi))
    for size, kk, s, (lo, hi) in zip(x.shape[1:-1], k, strides, pads)
  ]
  dtype = preferred or jnp.result_type(x.dtype, kernel.dtype)
  w = kernel.reshape(k + (kernel.shape[-1],)).astype(dtype)
  out = None
  for tap in np.ndindex(*k):
    term = _strided_window(x, [b + i for b, i in zip(base, tap)], counts, strides).astype(dtype)
    term = term * w[tap]
    out = term if out is None else out + term
  return out


_IMPL_FNS = {'xla': _xla, 'dot': _dot, 'fold': _fold, 'depthwise': _depthwise}


def applicable_impls(x_shape: Sequence[int], kernel_shape: Sequence[int], groups: int) -> tuple:
  """The implementations that can compute a conv of these shapes ('xla' always can)."""
  n = len(kernel_shape) - 2
  c_in, c_out = x_shape[-1], kernel_shape[-1]
  impls = ['xla']
  if groups == 1 and all(k == 1 for k in kernel_shape[:n]):
    impls.append('dot')
  if n in (2, 3):
    impls.append('fold')
  if groups == c_in == c_out and kernel_shape[-2] == 1:
    impls.append('depthwise')
  return tuple(impls)


def cpu_impl(x_shape: Sequence[int], kernel_shape: Sequence[int], groups: int) -> str:
  """What 'auto' uses on CPU for these shapes (see the module docstring for the measurements)."""
  impls = applicable_impls(x_shape, kernel_shape, groups)
  for impl in ('dot', 'depthwise'):
    if impl in impls:
      return impl
  # Grouped (not depthwise) convs stay on XLA: folding them makes XLA's grouped kernel
  # gradient far slower still. No backbone has one.
  if 'fold' in impls and groups == 1:
    return 'fold'
  return 'xla'


def resolve_impl(
  x: Any, kernel_shape: Sequence[int], groups: int, impl: Optional[str] = None
) -> str:
  """The concrete implementation a `conv` call with these arguments uses."""
  impl = impl or requested_impl()
  if impl not in IMPLS:
    raise ValueError(f'jaxvssl/models/conv.py: impl={impl!r}; use one of {IMPLS}.')
  if impl == 'auto':
    if _platform(x) != 'cpu':
      return 'xla'
    return cpu_impl(np.shape(x), kernel_shape, groups)
  if impl not in applicable_impls(np.shape(x), kernel_shape, groups):
    raise ValueError(
      f'jaxvssl/models/conv.py: impl={impl!r} cannot compute a conv of input '
      f'{tuple(np.shape(x))}, kernel {tuple(kernel_shape)}, groups {groups}.'
    )
  return impl


def conv(
  x: jax.Array,
  kernel: jax.Array,
  strides: Optional[Union[int, Sequence[int]]] = None,
  padding: PaddingLike = 'SAME',
  *,
  feature_group_count: int = 1,
  precision: Any = None,
  preferred_element_type: Optional[Dtype] = None,
  impl: Optional[str] = None,
) -> jax.Array:
  """Channels-last convolution, `lax.conv_general_dilated` semantics, fastest form per platform.

  Args:
    x: `[N, *spatial, Cin]` (1 to 3 spatial axes).
    kernel: `[*kernel_size, Cin / feature_group_count, Cout]`.
    strides: int or one per spatial axis (default 1).
    padding: 'SAME', 'VALID', an int, ints or `(low, high)` pairs per spatial axis.
    feature_group_count: grouped convolution (Cin and Cout divisible by it).
    precision, preferred_element_type: as for `lax.conv_general_dilated`.
    impl: force an implementation ('auto', 'xla', 'dot', 'fold', 'depthwise'); default: see
      `requested_impl`.

  Returns:
    `[N, *spatial', Cout]`, as `lax.conv_general_dilated` computes it.
  """
  n = kernel.ndim - 2
  if x.ndim != n + 2:
    raise ValueError(
      f'jaxvssl/models/conv.py: input {x.shape} must be [N, *spatial, C] for a kernel '
      f'{kernel.shape} with {n} spatial axes.'
    )
  if x.shape[-1] != kernel.shape[-2] * feature_group_count:
    raise ValueError(
      f'jaxvssl/models/conv.py: input channels {x.shape[-1]} != kernel in-features '
      f'{kernel.shape[-2]} x feature_group_count {feature_group_count}.'
    )
  strides = as_tuple(strides, n, 'strides')
  pads = explicit_padding(padding, x.shape[1:-1], kernel.shape[:n], strides)
  chosen = resolve_impl(x, kernel.shape, feature_group_count, impl)
  return _IMPL_FNS[chosen](
    x, kernel, strides, pads, feature_group_count, precision, preferred_element_type
  )


default_kernel_init = nn.initializers.lecun_normal()


class Conv(nn.Module):
  """Drop-in for `flax.linen.Conv` (shared weights, no dilation) that runs `conv`.

  Input `[*batch, *spatial, Cin]` (several or no batch axes are flattened / added as flax does),
  output `[*batch, *spatial', features]`. Parameters 'kernel'
  `[*kernel_size, Cin / feature_group_count, features]` and 'bias' `[features]`, the names,
  shapes and initialisers of `nn.Conv`, so checkpoints are interchangeable.
  """

  features: int
  kernel_size: Union[int, Sequence[int]]
  strides: Union[None, int, Sequence[int]] = 1
  padding: PaddingLike = 'SAME'
  feature_group_count: int = 1
  use_bias: bool = True
  dtype: Optional[Dtype] = None
  param_dtype: Dtype = jnp.float32
  precision: Any = None
  kernel_init: Initializer = default_kernel_init
  bias_init: Initializer = nn.initializers.zeros_init()
  impl: Optional[str] = None

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel_size = (
      (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    )
    n = len(kernel_size)
    batch_axes = inputs.ndim - (n + 1)
    batch_shape = inputs.shape[:batch_axes]
    if batch_axes != 1:
      inputs = inputs.reshape((-1,) + inputs.shape[batch_axes:])
    in_features = inputs.shape[-1]
    if in_features % self.feature_group_count:
      raise ValueError(
        f'jaxvssl/models/conv.py Conv: {in_features} input channels are not divisible by '
        f'feature_group_count={self.feature_group_count}.'
      )
    kernel = self.param(
      'kernel',
      self.kernel_init,
      kernel_size + (in_features // self.feature_group_count, self.features),
      self.param_dtype,
    )
    bias = (
      self.param('bias', self.bias_init, (self.features,), self.param_dtype)
      if self.use_bias
      else None
    )
    inputs, kernel, bias = flax_dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    y = conv(
      inputs,
      kernel,
      self.strides,
      self.padding,
      feature_group_count=self.feature_group_count,
      precision=self.precision,
      impl=self.impl,
    )
    if bias is not None:
      y = y + bias.reshape((1,) * (y.ndim - 1) + (-1,))
    if batch_axes != 1:
      y = y.reshape(batch_shape + y.shape[1:])
    return y

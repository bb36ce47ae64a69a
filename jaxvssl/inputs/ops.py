"""Small, pure TensorFlow ops for video sampling and augmentation.

Modelled on dmvr's `processors.py`: every function does one thing and can be
composed inside a `tf.data.Dataset.map`. Conventions:

* Frames are `[T, H, W, C]` (one clip). Pixel ops work on float32 in [0, 1];
  `decode_frames` returns uint8 and `to_float` converts.
* ALL randomness comes from stateless `tf.random` ops driven by an explicit
  `seed` tensor (int32/int64 `[2]`). The same seed always gives the same draw,
  whatever the tf.data parallelism, so a pipeline built from these ops is a
  pure function of its seeds.
* Spatial augmentation parameters are drawn ONCE per call (scalars only, never
  one per frame) and applied to every frame: a clip keeps one crop box, one
  flip, one colour jitter, ... Because no draw depends on the number of
  frames, two clips augmented with the same seed get exactly the same
  parameters (this is how views share an augmentation draw).

Short videos: when a clip needs more frames than the video has, indices are
wrapped with `pad_mode`:
  'loop'  : index % num_frames (dmvr's behaviour: the video is played again), or
  'clamp' : min(index, num_frames - 1) (the last frame is repeated, which adds
            no false motion; the project default, because its classes are
            defined by the direction of motion and a loop jumps back in time).
"""

from __future__ import annotations

import math
from typing import Sequence

from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()

PAD_MODES = ('loop', 'clamp')

# ITU-R 601 luma weights, the ones tf.image.rgb_to_grayscale and torchvision use.
_LUMA = (0.2989, 0.5870, 0.1140)


# ----------------------------------------------------------------------------
# Seeds.


def split_seed(seed: tf.Tensor, num: int) -> tf.Tensor:
  """Splits `seed` [2] into `num` independent seeds `[num, 2]`."""
  return tf.random.experimental.stateless_split(seed, num)


def fold_in(seed: tf.Tensor, data) -> tf.Tensor:
  """Derives a new seed `[2]` from `seed` and an integer (scalar) `data`."""
  data = tf.cast(data, tf.int64)
  return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), data)


def _uniform(seed: tf.Tensor, minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
  """A float32 scalar uniform in [minval, maxval)."""
  return tf.random.stateless_uniform([], seed, minval=minval, maxval=maxval)


def _bernoulli(seed: tf.Tensor, prob: float) -> tf.Tensor:
  """A bool scalar that is True with probability `prob` (exactly never for 0)."""
  return _uniform(seed) < prob


def random_permutation(n, seed: tf.Tensor) -> tf.Tensor:
  """A uniformly random permutation of range(n), int32 `[n]`."""
  return tf.argsort(tf.random.stateless_uniform([n], seed), stable=True)


# ----------------------------------------------------------------------------
# Temporal sampling. All index ops return int32 and never read frames.


def clip_span(num_frames: int, stride: int) -> int:
  """Number of source frames covered by `num_frames` frames at `stride`."""
  return (num_frames - 1) * stride + 1


def wrap_indices(
  indices: tf.Tensor, num_available: tf.Tensor, pad_mode: str = 'clamp'
) -> tf.Tensor:
  """Maps indices >= num_available back into the video (see module doc)."""
  indices = tf.cast(indices, tf.int32)
  num_available = tf.cast(num_available, tf.int32)
  if pad_mode == 'loop':
    return tf.math.floormod(indices, num_available)
  if pad_mode == 'clamp':
    return tf.clip_by_value(indices, 0, num_available - 1)
  raise ValueError(f'ops.wrap_indices: pad_mode={pad_mode!r} not in {PAD_MODES}.')


def max_start(num_available: tf.Tensor, span: int | tf.Tensor) -> tf.Tensor:
  """Largest start such that a window of `span` frames fits (0 if none fits)."""
  return tf.maximum(tf.cast(num_available, tf.int32) - tf.cast(span, tf.int32), 0)


def sample_start(num_available: tf.Tensor, span: int | tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """A start uniform in [0, max_start], int32 scalar."""
  return tf.random.stateless_uniform(
    [], seed, minval=0, maxval=max_start(num_available, span) + 1, dtype=tf.int32
  )


def clip_indices(
  start: tf.Tensor, num_frames: int, stride: int, num_available: tf.Tensor, pad_mode: str = 'clamp'
) -> tf.Tensor:
  """Indices `start + stride * [0..num_frames)`, wrapped. int32 `[num_frames]`."""
  idx = tf.cast(start, tf.int32) + stride * tf.range(num_frames, dtype=tf.int32)
  return wrap_indices(idx, num_available, pad_mode)


def sample_clip_indices(
  num_available: tf.Tensor,
  num_frames: int,
  stride: int,
  seed: tf.Tensor | None = None,
  start: tf.Tensor | None = None,
  pad_mode: str = 'clamp',
) -> tf.Tensor:
  """Contiguous strided clip: random start from `seed`, or the given `start`.

  Returns int32 `[num_frames]`.
  """
  if (seed is None) == (start is None):
    raise ValueError('ops.sample_clip_indices: pass exactly one of seed, start.')
  if start is None:
    start = sample_start(num_available, clip_span(num_frames, stride), seed)
  return clip_indices(start, num_frames, stride, num_available, pad_mode)


def eval_clip_starts(num_available: tf.Tensor, num_clips: int, span: int) -> tf.Tensor:
  """Uniformly spaced starts of `num_clips` windows of `span` frames.

  The first window starts at frame 0 and the last ends at the last frame, so
  the clips cover the whole video; one clip is centred. When the video is
  shorter than `span`, every start is 0 (indices are then wrapped by
  `pad_mode`, see `eval_clip_indices`). Returns int32 `[num_clips]`.
  """
  last = max_start(num_available, span)
  if num_clips == 1:
    return tf.reshape(last // 2, [1])
  pos = tf.linspace(0.0, tf.cast(last, tf.float32), num_clips)
  return tf.cast(tf.round(pos), tf.int32)


def eval_clip_indices(
  num_available: tf.Tensor, num_clips: int, num_frames: int, stride: int, pad_mode: str = 'clamp'
) -> tf.Tensor:
  """Frame indices of the evaluation clips, int32 `[num_clips, num_frames]`."""
  starts = eval_clip_starts(num_available, num_clips, clip_span(num_frames, stride))
  idx = starts[:, None] + stride * tf.range(num_frames, dtype=tf.int32)[None, :]
  return wrap_indices(idx, num_available, pad_mode)


def motion_window_bounds(
  num_available: tf.Tensor, num_windows: tf.Tensor, fps: tf.Tensor, window_seconds: float = 1.0
) -> tuple[tf.Tensor, tf.Tensor]:
  """[start, end) frames of each stored motion window, int32 `[num_windows]` each.

  Same convention as `jaxvssl.datasets.motion.window_bounds` (which computed the
  stored scores): L = fps * window_seconds frames per window (may be
  fractional), window i starts at floor(i * L), the last window extends to the
  end of the video (it absorbed the partial remainder).
  """
  n = tf.cast(num_available, tf.int32)
  length = tf.cast(fps, tf.float64) * window_seconds
  i = tf.cast(tf.range(num_windows), tf.float64)
  starts = tf.minimum(tf.cast(tf.floor(i * length + 1e-6), tf.int32), n - 1)
  ends = tf.concat([starts[1:], tf.reshape(n, [1])], axis=0)
  return starts, ends


def targeted_start(
  num_available: tf.Tensor,
  span: int,
  motion_scores: tf.Tensor,
  fps: tf.Tensor,
  beta: float,
  seed: tf.Tensor,
  window_seconds: float = 1.0,
) -> tf.Tensor:
  """SCVRL targeted sampling: a clip start biased towards high-motion windows.

  Window w (frames `motion_window_bounds`) is drawn with
  p_w = softmax(motion_scores / beta); the clip CENTRE is then uniform over the
  window's frames and the start is `centre - span // 2`, clipped so the clip
  lies in the video. Clips are usually longer than one window, so centring on
  the window (rather than starting in it) is what puts the high-motion second
  inside the clip. beta = inf gives uniform windows. A video without scores
  falls back to a uniform start.

  Args:
    num_available: frames in the video (int scalar).
    span: frames covered by the clip (or temporal group).
    motion_scores: float32 `[num_windows]`.
    fps: frames per second (float scalar).
    beta: softmax temperature, > 0; math.inf for uniform.
    seed: `[2]`.
    window_seconds: window length used when the scores were computed.
  Returns:
    int32 scalar start.
  """
  if not beta > 0:
    raise ValueError(f'ops.targeted_start: beta={beta} must be > 0 (inf = uniform).')
  scores = tf.reshape(tf.cast(motion_scores, tf.float32), [-1])
  window_seed, offset_seed, fallback_seed = tf.unstack(split_seed(seed, 3))
  last = max_start(num_available, span)

  def targeted():
    logits = tf.zeros_like(scores) if math.isinf(beta) else scores / beta
    window = tf.random.stateless_categorical(logits[None], 1, window_seed, dtype=tf.int32)[0, 0]
    starts, ends = motion_window_bounds(num_available, tf.size(scores), fps, window_seconds)
    width = tf.maximum(ends[window] - starts[window], 1)
    centre = starts[window] + tf.random.stateless_uniform(
      [], offset_seed, minval=0, maxval=width, dtype=tf.int32
    )
    return tf.clip_by_value(centre - span // 2, 0, last)

  return tf.cond(
    tf.size(scores) > 0, targeted, lambda: sample_start(num_available, span, fallback_seed)
  )


def temporal_jitter(
  indices: tf.Tensor, max_jitter: int, num_available: tf.Tensor, seed: tf.Tensor
) -> tf.Tensor:
  """Moves each index by an independent integer in [-max_jitter, max_jitter].

  The result is clipped to the video and sorted, so the frames keep their
  temporal order (jitter never reverses time). int32, same shape.
  """
  if max_jitter <= 0:
    return indices
  delta = tf.random.stateless_uniform(
    tf.shape(indices), seed, minval=-max_jitter, maxval=max_jitter + 1, dtype=tf.int32
  )
  moved = tf.clip_by_value(indices + delta, 0, tf.cast(num_available, tf.int32) - 1)
  return tf.sort(moved, axis=-1)


# ----------------------------------------------------------------------------
# Decoding.


def decode_frames(encoded: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  """Decodes the JPEG frames `encoded[indices]`.

  Args:
    encoded: tf.string `[T]`, one JPEG per frame (TFDS SkipDecoding format).
    indices: int `[N]`.
  Returns:
    uint8 `[N, H, W, 3]`.
  """
  picked = tf.gather(encoded, indices)
  frames = tf.map_fn(
    lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3),
    picked,
    fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
  )
  return frames


def to_float(frames: tf.Tensor) -> tf.Tensor:
  """uint8 [0, 255] -> float32 [0, 1]."""
  return tf.image.convert_image_dtype(frames, tf.float32)


# ----------------------------------------------------------------------------
# Geometry. Inputs `[..., H, W, C]`; outputs float32.


def resize_smallest(frames: tf.Tensor, min_size: int) -> tf.Tensor:
  """Resizes so the short side is `min_size`, keeping the aspect ratio."""
  shape = tf.shape(frames)
  h = tf.cast(shape[-3], tf.float32)
  w = tf.cast(shape[-2], tf.float32)
  scale = tf.cast(min_size, tf.float32) / tf.minimum(h, w)
  new_h = tf.maximum(tf.cast(tf.round(h * scale), tf.int32), min_size)
  new_w = tf.maximum(tf.cast(tf.round(w * scale), tf.int32), min_size)
  return tf.image.resize(tf.cast(frames, tf.float32), [new_h, new_w])


def ensure_min_size(frames: tf.Tensor, min_size: int) -> tf.Tensor:
  """Upscales (short side -> min_size) only when the frames are smaller."""
  shape = tf.shape(frames)
  too_small = tf.minimum(shape[-3], shape[-2]) < min_size
  return tf.cond(
    too_small, lambda: resize_smallest(frames, min_size), lambda: tf.cast(frames, tf.float32)
  )


def random_resized_crop(
  frames: tf.Tensor,
  seed: tf.Tensor,
  output_size: int,
  area_range: Sequence[float] = (0.08, 1.0),
  aspect_ratio_range: Sequence[float] = (3 / 4, 4 / 3),
  max_attempts: int = 10,
) -> tf.Tensor:
  """Inception-style crop: one box for the whole clip, resized to a square.

  The box covers a fraction of the frame area in `area_range` and has
  width/height in `aspect_ratio_range`; after `max_attempts` failed draws the
  whole frame is used.

  Args:
    frames: `[T, H, W, C]`.
  Returns:
    float32 `[T, output_size, output_size, C]`.
  """
  shape = tf.shape(frames)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
    image_size=shape[-3:],
    bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
    seed=seed,
    min_object_covered=float(area_range[0]),
    aspect_ratio_range=list(aspect_ratio_range),
    area_range=list(area_range),
    max_attempts=max_attempts,
    use_image_if_no_bounding_boxes=True,
  )
  cropped = frames[:, begin[0] : begin[0] + size[0], begin[1] : begin[1] + size[1], :]
  return tf.image.resize(tf.cast(cropped, tf.float32), [output_size, output_size])


def random_crop(frames: tf.Tensor, seed: tf.Tensor, output_size: int) -> tf.Tensor:
  """Plain random crop (no scale or aspect jitter): one `output_size`^2 box for the whole clip.

  The box's top-left corner is uniform over every position where it fits; pixels are copied,
  never resampled (torchvision's `RandomCrop`, the crop of C3D-style pipelines such as CACL's
  after its resize to 128 x 171). Frames smaller than the box are first upscaled so their short
  side is `output_size` (`ensure_min_size`; the pipeline warns when that happens).

  Args:
    frames: `[T, H, W, C]`.
  Returns:
    float32 `[T, output_size, output_size, C]`.
  """
  frames = ensure_min_size(frames, output_size)
  shape = tf.shape(frames)
  y_seed, x_seed = tf.unstack(split_seed(seed, 2))
  y = tf.random.stateless_uniform(
    [], y_seed, minval=0, maxval=shape[-3] - output_size + 1, dtype=tf.int32
  )
  x = tf.random.stateless_uniform(
    [], x_seed, minval=0, maxval=shape[-2] - output_size + 1, dtype=tf.int32
  )
  cropped = frames[:, y : y + output_size, x : x + output_size, :]
  return tf.ensure_shape(tf.cast(cropped, tf.float32), [None, output_size, output_size, None])


def center_crop(frames: tf.Tensor, size: int) -> tf.Tensor:
  """Central `size` x `size` crop of `[..., H, W, C]` (zero-padded if smaller)."""
  return tf.cast(tf.image.resize_with_crop_or_pad(frames, size, size), tf.float32)


def three_crop(frames: tf.Tensor, size: int) -> tf.Tensor:
  """Three `size` x `size` crops along the long side: start, centre, end.

  Centred on the short side, as in the usual 3-crop video test protocol; the
  three crops cover the whole long side when the short side equals `size`.

  Args:
    frames: `[T, H, W, C]` with H, W >= size.
  Returns:
    float32 `[3, T, size, size, C]`.
  """
  shape = tf.shape(frames)
  h, w = shape[1], shape[2]
  landscape = w >= h
  long_side = tf.maximum(h, w)
  short_off = (tf.minimum(h, w) - size) // 2
  crops = []
  for long_off in (0, (long_side - size) // 2, long_side - size):
    y = tf.where(landscape, short_off, long_off)
    x = tf.where(landscape, long_off, short_off)
    crops.append(frames[:, y : y + size, x : x + size, :])
  out = tf.cast(tf.stack(crops), tf.float32)
  return tf.ensure_shape(out, [3, None, size, size, None])


def random_flip(frames: tf.Tensor, seed: tf.Tensor, prob: float = 0.5) -> tf.Tensor:
  """Flips every frame left-right together, with probability `prob`."""
  if prob <= 0:  # no graph for a disabled op (pipeline builds stay fast)
    return frames
  return tf.cond(_bernoulli(seed, prob), lambda: tf.reverse(frames, axis=[-2]), lambda: frames)


# ----------------------------------------------------------------------------
# Photometry. float32 [0, 1] in and out; torchvision semantics so the paper
# strengths (0.4, 0.4, 0.4, 0.1) mean what they mean there.


def rgb_to_gray(frames: tf.Tensor) -> tf.Tensor:
  """Luma `[..., H, W, 1]`."""
  # A [N, 3] x [3, 1] matmul: cheaper than multiply + reduce over channels.
  luma = tf.constant(_LUMA, frames.dtype)[:, None]
  flat = tf.reshape(frames, [-1, 3])
  return tf.reshape(tf.matmul(flat, luma), tf.concat([tf.shape(frames)[:-1], [1]], 0))


def adjust_brightness(frames: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """Multiplies intensities by `factor` (torchvision brightness)."""
  return tf.clip_by_value(frames * factor, 0.0, 1.0)


def adjust_contrast(frames: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """Blends each frame with its mean luma (torchvision contrast)."""
  # Luma is linear, so the mean luma is the luma of the mean colour (cheap).
  mean = rgb_to_gray(tf.reduce_mean(frames, axis=[-3, -2], keepdims=True))
  return tf.clip_by_value((frames - mean) * factor + mean, 0.0, 1.0)


def adjust_saturation(frames: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """Blends with the per-pixel luma (torchvision saturation)."""
  gray = rgb_to_gray(frames)
  return tf.clip_by_value((frames - gray) * factor + gray, 0.0, 1.0)


def adjust_hue(frames: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
  """Rotates the hue by `delta` turns, delta in [-0.5, 0.5]."""
  return tf.clip_by_value(tf.image.adjust_hue(frames, delta), 0.0, 1.0)


def color_jitter(
  frames: tf.Tensor,
  seed: tf.Tensor,
  strength: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
  prob: float = 0.8,
  random_order: bool = True,
) -> tf.Tensor:
  """torchvision-style ColorJitter applied with probability `prob`.

  Factors: brightness, contrast, saturation ~ U[max(0, 1 - s), 1 + s], hue
  shift ~ U[-h, h], one draw per clip. With `random_order` the four
  adjustments run in a random order (as torchvision does), else in the order
  brightness, contrast, saturation, hue. A zero strength skips that op.
  """
  b, c, s, h = (float(v) for v in strength)
  if prob <= 0 or not any((b, c, s, h)):
    return frames
  apply_seed, order_seed, b_seed, c_seed, s_seed, h_seed = tf.unstack(split_seed(seed, 6))
  factor = lambda sd, v: _uniform(sd, max(0.0, 1.0 - v), 1.0 + v)
  ops = [
    lambda x: adjust_brightness(x, factor(b_seed, b)) if b > 0 else x,
    lambda x: adjust_contrast(x, factor(c_seed, c)) if c > 0 else x,
    lambda x: adjust_saturation(x, factor(s_seed, s)) if s > 0 else x,
    lambda x: adjust_hue(x, _uniform(h_seed, -h, h)) if h > 0 else x,
  ]

  def jitter(x):
    if not random_order:
      for op in ops:
        x = op(x)
      return x
    order = random_permutation(len(ops), order_seed)

    # A while_loop traces the four branches once (a Python loop would trace
    # them once per position: 4x the graph and the pipeline build time).
    def body(i, y):
      return i + 1, tf.switch_case(order[i], [lambda op=op: op(y) for op in ops])

    _, x = tf.while_loop(
      lambda i, y: i < len(ops), body, (tf.constant(0), x), maximum_iterations=len(ops)
    )
    return x

  return tf.cond(_bernoulli(apply_seed, prob), lambda: jitter(frames), lambda: frames)


def random_grayscale(frames: tf.Tensor, seed: tf.Tensor, prob: float = 0.2) -> tf.Tensor:
  """Replaces RGB by luma (kept 3-channel) with probability `prob`."""
  if prob <= 0:
    return frames
  gray = lambda: tf.broadcast_to(rgb_to_gray(frames), tf.shape(frames))
  return tf.cond(_bernoulli(seed, prob), gray, lambda: frames)


def gaussian_kernel(sigma: tf.Tensor, truncate: float = 3.0) -> tf.Tensor:
  """Normalised 1-D Gaussian of radius ceil(truncate * sigma), float32 `[2r+1]`."""
  sigma = tf.cast(sigma, tf.float32)
  radius = tf.maximum(tf.cast(tf.math.ceil(truncate * sigma), tf.int32), 1)
  x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
  k = tf.exp(-0.5 * tf.square(x / sigma))
  return k / tf.reduce_sum(k)


def reflect_blur_matrix(size: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  """`[size, size]` matrix M with (M @ v)[i] = sum_j kernel[j] v[reflect(i + j - r)].

  1-D convolution with reflect padding (tf.pad 'REFLECT': -1 -> 1) as a
  banded matrix; requires the kernel radius r < size.
  """
  r = tf.size(kernel) // 2
  src = tf.abs(tf.range(size)[:, None] + tf.range(-r, r + 1)[None, :])
  src = tf.where(src > size - 1, 2 * (size - 1) - src, src)
  return tf.reduce_sum(tf.one_hot(src, size) * kernel[None, :, None], axis=1)


def gaussian_blur(frames: tf.Tensor, sigma: tf.Tensor, truncate: float = 3.0) -> tf.Tensor:
  """Separable Gaussian blur of `[T, H, W, C]` with reflect padding.

  The kernel size follows sigma (radius ceil(truncate * sigma)), capped so
  the reflection stays inside the frame. Each 1-D pass is a matmul with a
  banded matrix: about 4x less CPU than tf.nn.depthwise_conv2d here.
  """
  kernel = gaussian_kernel(sigma, truncate)
  shape = tf.shape(frames)
  radius = tf.minimum(tf.size(kernel) // 2, tf.minimum(shape[1], shape[2]) - 1)
  full = tf.size(kernel) // 2
  kernel = kernel[full - radius : full + radius + 1]
  kernel = kernel / tf.reduce_sum(kernel)
  x = tf.transpose(frames, [0, 3, 1, 2])  # [T, C, H, W]
  x = tf.matmul(x, reflect_blur_matrix(shape[2], kernel), transpose_b=True)  # along W
  x = tf.matmul(reflect_blur_matrix(shape[1], kernel), x)  # along H
  return tf.transpose(x, [0, 2, 3, 1])


def random_gaussian_blur(
  frames: tf.Tensor,
  seed: tf.Tensor,
  prob: float = 0.5,
  sigma_range: Sequence[float] = (0.1, 2.0),
  truncate: float = 3.0,
) -> tf.Tensor:
  """With probability `prob`, blurs with sigma ~ U[sigma_range] (one per clip)."""
  if prob <= 0:
    return frames
  apply_seed, sigma_seed = tf.unstack(split_seed(seed, 2))
  sigma = _uniform(sigma_seed, float(sigma_range[0]), float(sigma_range[1]))
  return tf.cond(
    _bernoulli(apply_seed, prob), lambda: gaussian_blur(frames, sigma, truncate), lambda: frames
  )


def normalize(frames: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
  """(frames - mean) / std per channel."""
  mean = tf.constant(mean, tf.float32)
  std = tf.constant(std, tf.float32)
  return (frames - mean) / std


# ----------------------------------------------------------------------------
# Frame order.


def non_identity_permutation(n: int, seed: tf.Tensor) -> tf.Tensor:
  """A random permutation of range(n) that is never the identity (n >= 2).

  A draw that happens to be the identity is replaced by its rotation by one,
  so the distribution is uniform over non-identity permutations except that
  the rotation gets twice the mass (1/n! extra; negligible for n = 16).
  """
  if n < 2:
    raise ValueError(f'ops.non_identity_permutation: n={n} must be >= 2.')
  perm = random_permutation(n, seed)
  identity = tf.reduce_all(tf.equal(perm, tf.range(n, dtype=perm.dtype)))
  return tf.where(identity, tf.roll(perm, 1, axis=0), perm)


def permute_frames(frames: tf.Tensor, perm: tf.Tensor, axis: int = 0) -> tf.Tensor:
  """Reorders frames along `axis`: output[i] = frames[perm[i]]."""
  return tf.gather(frames, perm, axis=axis)

"""rate_order clip construction: multi-rate segments in shuffled order.

rate_order: segment sampling-rate and order prediction, IEEE TCSVT 2021 (DOI
10.1109/TCSVT.2021.3114209), Sec. III-C/D; the method is `jaxvssl/methods/rate_order.py`. See
docs/input_pipeline.md and docs/methods/rate_order.md.

A clip of `clip_length` frames is made of n segments (2..5). In timeline order segment k has a
random length len_k >= min_segment_length (lengths sum to clip_length; uniform over the
compositions) and its own sampling rate r_k (frame interval) in [rate_min, rate_max]. Segments
are consecutive on the real timeline:
    start_0 ~ U{0 .. V - span},  start_{k+1} = start_k + len_k * r_k,
    frames of segment k = start_k + r_k * [0, 1, ..., len_k - 1],
    span = sum_k len_k r_k - r_{n-1} + 1 <= V (the video length).
Then the segments are put in a random order pi (uniform over the n! orders): input position j
holds timeline segment pi[j]. Labels: the order class = rank of pi in lexicographic order of the
permutations of range(n) (the order of `itertools.permutations(range(n))`, identity = class 0,
decode with `class_to_permutation`), and the rates / lengths in INPUT order (rates[pi]).

Rates (`rate_draw`):
  'sequential' (default): the segments are visited in a random order; each one's rate is drawn
      uniformly from [rate_min, c_k], where c_k = min(rate_max, the largest rate that still
      leaves room for every segment not yet drawn at rate_min). When the video holds the longest
      possible span, every c_k = rate_max and the rates are i.i.d. uniform on [rate_min,
      rate_max]; on a short video the first segments drawn still reach the high rates.
  'first_fit' (the earlier sampler, kept to compare): `num_candidates` i.i.d. uniform rate
      vectors are drawn and the first whose span fits is used, i.e. uniform over the FITTING
      VECTORS. On short videos that skews every rate low (most fitting vectors have small rates:
      48-frame videos, 16-frame clips, n = 3: mean rate 2.7 for [1, 8], 2.3 for [1, 4];
      `scripts/segment_rate_stats.py`); if no candidate fits, the first is clipped to the largest
      rate c with all-c rates fitting, c = (V - 1) // (clip_length - 1).
If even rate_min does not fit, a ValueError (NumPy) / InvalidArgumentError (TF) names the video
length and the requirement. A segment needs at least 2 frames (one frame shows no interval).

`length_multiple` g (default 1) makes every length a multiple of g (the compositions are drawn in
units of g frames; clip_length and min_segment_length must be multiples of g). rate_order's tiny
scale uses g = 2 with `model.input_mode='group_residual'` and 2-frame input groups: the groups then
never straddle a seam between shuffled segments, so the input shows no difference across a seam
(which would hand the network where the order breaks).

Two implementations with the same semantics: `sample_segments` (NumPy Generator) and
`sample_segments_tf` (stateless TF ops, usable in tf.data.Dataset.map). They use different
random streams, so they agree on the invariants and the distributions, not sample by sample.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SegmentSample:
  """One rate_order clip layout (all arrays in INPUT order unless stated).

  indices: int32 [clip_length] source frame indices.
  order_class: int, lexicographic rank of `permutation` among the n! orders.
  permutation: int32 [n], input position j holds timeline segment permutation[j].
  rates: int32 [n] sampling rate of each input segment.
  lengths: int32 [n] number of frames of each input segment.
  """

  indices: np.ndarray
  order_class: int
  permutation: np.ndarray
  rates: np.ndarray
  lengths: np.ndarray


def permutation_to_class(perm) -> int:
  """Lexicographic rank (Lehmer code) of a permutation of range(n); identity -> 0."""
  perm = [int(p) for p in perm]
  n = len(perm)
  rank = 0
  for i, p in enumerate(perm):
    smaller_after = sum(1 for q in perm[i + 1 :] if q < p)
    rank += smaller_after * math.factorial(n - 1 - i)
  return rank


def class_to_permutation(order_class: int, n: int) -> np.ndarray:
  """Inverse of `permutation_to_class`: int32 [n]."""
  if not 0 <= order_class < math.factorial(n):
    raise ValueError(f'class_to_permutation: order_class={order_class} not in [0, {n}!)')
  remaining = list(range(n))
  out = []
  for i in range(n):
    f = math.factorial(n - 1 - i)
    out.append(remaining.pop(order_class // f))
    order_class %= f
  return np.asarray(out, np.int32)


RATE_DRAWS = ('sequential', 'first_fit')


def _check_config(
  clip_length: int,
  num_segments: int,
  rate_range: Tuple[int, int],
  min_segment_length: int,
  rate_draw: str = 'sequential',
  length_multiple: int = 1,
):
  rate_min, rate_max = rate_range
  if length_multiple < 1 or clip_length % length_multiple or min_segment_length % length_multiple:
    raise ValueError(
      f'segments: length_multiple={length_multiple} must be >= 1 and divide clip_length='
      f'{clip_length} and min_segment_length={min_segment_length}'
    )
  if not 1 <= rate_min <= rate_max:
    raise ValueError(f'segments: rate_range={rate_range} must satisfy 1 <= min <= max')
  if min_segment_length < 2:
    raise ValueError(
      f'segments: min_segment_length={min_segment_length} must be >= 2 (a one-frame segment '
      'shows no sampling rate)'
    )
  if num_segments < 1 or num_segments * min_segment_length > clip_length:
    raise ValueError(
      f'segments: num_segments={num_segments} segments of >= {min_segment_length} '
      f'frames do not fit clip_length={clip_length}'
    )
  if rate_draw not in RATE_DRAWS:
    raise ValueError(f'segments: rate_draw={rate_draw!r} must be one of {RATE_DRAWS}')


def _fit_error(video_length: int, clip_length: int, rate_min: int) -> ValueError:
  need = clip_length * rate_min - rate_min + 1
  return ValueError(
    f'segments: video has {video_length} frames but a {clip_length}-frame clip at '
    f'the minimum sampling rate {rate_min} spans {need} frames'
  )


def _span_weights(lengths):
  """w_k with span = sum_k w_k r_k + 1: len_k frames advance len_k * r_k, except the last
  segment's last step (its final frame ends the clip)."""
  return lengths - (np.arange(len(lengths)) == len(lengths) - 1)


def _sequential_rates(rng, lengths, video_length, rate_min, rate_max):
  """'sequential' draw (module docstring), NumPy."""
  w = _span_weights(lengths)
  budget = video_length - 1  # sum_k w_k r_k <= V - 1
  rates = np.zeros(len(lengths), np.int64)
  undrawn = np.ones(len(lengths), bool)
  for k in rng.permutation(len(lengths)):
    undrawn[k] = False
    room = budget - int(rates @ w) - rate_min * int(w[undrawn].sum())
    cap = min(rate_max, room // int(w[k]))
    rates[k] = rng.integers(rate_min, cap + 1)
  return rates


def sample_segments(
  rng: np.random.Generator,
  video_length: int,
  clip_length: int = 16,
  num_segments: int = 3,
  rate_range: Tuple[int, int] = (1, 8),
  min_segment_length: int = 3,
  num_candidates: int = 64,
  rate_draw: str = 'sequential',
  length_multiple: int = 1,
) -> SegmentSample:
  """Samples one rate_order clip layout (NumPy). See the module docstring for the semantics.

  Args:
    rng: NumPy Generator. video_length: V, frames in the video.
    clip_length: frames in the clip (16). num_segments: n (3; 2..5 in the paper).
    rate_range: inclusive [rate_min, rate_max] ((1, 8)). min_segment_length: 3 (>= 2).
    num_candidates: rate vectors drawn by 'first_fit' before it falls back to clipping.
    rate_draw: 'sequential' | 'first_fit'.
    length_multiple: every segment length is a multiple of it (module docstring).
  Returns:
    SegmentSample.
  """
  _check_config(
    clip_length, num_segments, rate_range, min_segment_length, rate_draw, length_multiple
  )
  rate_min, rate_max = rate_range
  n = num_segments
  if clip_length * rate_min - rate_min + 1 > video_length:
    raise _fit_error(video_length, clip_length, rate_min)
  # Lengths: uniform over compositions of the extra frames (stars and bars), in units of
  # length_multiple frames.
  g = length_multiple
  extra = (clip_length - n * min_segment_length) // g
  bars = np.sort(np.argsort(rng.random(extra + n - 1))[: n - 1])  # n-1 distinct slots
  edges = np.concatenate([[-1], bars, [extra + n - 1]])
  lengths = ((np.diff(edges) - 1) * g + min_segment_length).astype(np.int64)  # timeline order
  if rate_draw == 'sequential':
    rates = _sequential_rates(rng, lengths, video_length, rate_min, rate_max)
  else:  # 'first_fit': the first candidate whose span fits
    cands = rng.integers(rate_min, rate_max + 1, size=(num_candidates, n))
    spans = cands @ lengths - cands[:, -1] + 1
    fits = np.flatnonzero(spans <= video_length)
    if len(fits):
      rates = cands[fits[0]]
    else:
      rates = np.minimum(cands[0], (video_length - 1) // (clip_length - 1))
  span = int(rates @ lengths - rates[-1] + 1)
  start = int(rng.integers(0, video_length - span + 1))
  starts = start + np.concatenate([[0], np.cumsum(lengths * rates)[:-1]])  # timeline order
  perm = rng.permutation(n)
  in_lengths, in_rates = lengths[perm], rates[perm]
  seg_id = np.repeat(np.arange(n), in_lengths)
  offset = np.arange(clip_length) - (np.cumsum(in_lengths) - in_lengths)[seg_id]
  indices = starts[perm][seg_id] + offset * in_rates[seg_id]
  return SegmentSample(
    indices=indices.astype(np.int32),
    order_class=permutation_to_class(perm),
    permutation=perm.astype(np.int32),
    rates=in_rates.astype(np.int32),
    lengths=in_lengths.astype(np.int32),
  )


def _sequential_rates_tf(seed, lengths, video_length, rate_min, rate_max, n):
  """'sequential' draw (module docstring), stateless TF; n static (unrolled)."""
  order_seed, draw_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  last = tf.cast(tf.equal(tf.range(n), n - 1), tf.int32)
  w = lengths - last
  budget = video_length - 1
  order = tf.argsort(tf.random.stateless_uniform([n], order_seed))
  uniforms = tf.random.stateless_uniform([n], draw_seed)
  rates = tf.zeros([n], tf.int32)
  undrawn = tf.ones([n], tf.int32)
  for i in range(n):
    k = order[i]
    onehot = tf.one_hot(k, n, dtype=tf.int32)
    undrawn = undrawn - onehot
    room = budget - tf.reduce_sum(rates * w) - rate_min * tf.reduce_sum(w * undrawn)
    cap = tf.minimum(rate_max, room // tf.gather(w, k))
    # Uniform integer in [rate_min, cap] from one uniform float (cap - rate_min + 1 values).
    count = tf.cast(cap - rate_min + 1, tf.float32)
    value = rate_min + tf.minimum(tf.cast(tf.floor(uniforms[i] * count), tf.int32), cap - rate_min)
    rates = rates + onehot * value
  return rates


def sample_segments_tf(
  seed: tf.Tensor,
  video_length: tf.Tensor,
  clip_length: int = 16,
  num_segments: int = 3,
  rate_range: Tuple[int, int] = (1, 8),
  min_segment_length: int = 3,
  num_candidates: int = 64,
  rate_draw: str = 'sequential',
  length_multiple: int = 1,
) -> dict:
  """Same as `sample_segments`, with stateless TF ops (usable inside tf.data map functions).

  Args:
    seed: int32/int64 [2] stateless seed (e.g. from tf.data's `Dataset.random` or a fold-in of
      the example index and the epoch).
    video_length: int scalar tensor, V.
    other args: static, as in `sample_segments`.
  Returns:
    dict of tensors: 'indices' int32 [clip_length], 'order_class' int32 [],
    'permutation' int32 [n], 'rates' int32 [n], 'lengths' int32 [n] (input order).
  Raises:
    tf.errors.InvalidArgumentError at run time when even rate_min does not fit the video.
  """
  _check_config(
    clip_length, num_segments, rate_range, min_segment_length, rate_draw, length_multiple
  )
  rate_min, rate_max = rate_range
  n = num_segments
  g = length_multiple
  extra = (clip_length - n * min_segment_length) // g
  video_length = tf.cast(video_length, tf.int32)
  need = clip_length * rate_min - rate_min + 1
  check = tf.debugging.assert_less_equal(
    need,
    video_length,
    message=(
      f'segments: video too short: a {clip_length}-frame clip at the minimum sampling '
      f'rate {rate_min} spans {need} frames; video length is'
    ),
  )
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
  with tf.control_dependencies([check]):
    # Lengths (timeline order): n-1 distinct bars among extra+n-1 slots.
    noise = tf.random.stateless_uniform([extra + n - 1], seeds[0])
    bars = tf.sort(tf.cast(tf.argsort(noise)[: n - 1], tf.int32))
  edges = tf.concat([[-1], bars, [extra + n - 1]], axis=0)
  lengths = (edges[1:] - edges[:-1] - 1) * g + min_segment_length  # [n]
  if rate_draw == 'sequential':
    rates = _sequential_rates_tf(seeds[1], lengths, video_length, rate_min, rate_max, n)
  else:
    cands = tf.random.stateless_uniform(
      [num_candidates, n], seeds[1], minval=rate_min, maxval=rate_max + 1, dtype=tf.int32
    )
    spans = tf.reduce_sum(cands * lengths[None], axis=1) - cands[:, -1] + 1
    fits = spans <= video_length
    first_fit = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    cap = (video_length - 1) // (clip_length - 1)
    rates = tf.where(tf.reduce_any(fits), cands[first_fit], tf.minimum(cands[0], cap))
  span = tf.reduce_sum(rates * lengths) - rates[-1] + 1
  start = tf.random.stateless_uniform(
    [], seeds[2], minval=0, maxval=video_length - span + 1, dtype=tf.int32
  )
  starts = start + tf.concat([[0], tf.cumsum(lengths * rates)[:-1]], axis=0)
  perm = tf.cast(tf.argsort(tf.random.stateless_uniform([n], seeds[3])), tf.int32)
  in_lengths = tf.gather(lengths, perm)
  in_rates = tf.gather(rates, perm)
  in_starts = tf.gather(starts, perm)
  seg_id = tf.repeat(tf.range(n), in_lengths)
  offset = tf.range(clip_length) - tf.gather(tf.cumsum(in_lengths, exclusive=True), seg_id)
  indices = tf.gather(in_starts, seg_id) + offset * tf.gather(in_rates, seg_id)
  indices = tf.ensure_shape(indices, [clip_length])
  # Lexicographic rank: sum_i #{j > i : perm[j] < perm[i]} * (n-1-i)!.
  later = tf.range(n)[None, :] > tf.range(n)[:, None]
  smaller = perm[None, :] < perm[:, None]
  counts = tf.reduce_sum(tf.cast(later & smaller, tf.int32), axis=1)
  factorials = tf.constant([math.factorial(n - 1 - i) for i in range(n)], tf.int32)
  return {
    'indices': indices,
    'order_class': tf.reduce_sum(counts * factorials),
    'permutation': perm,
    'rates': tf.ensure_shape(in_rates, [n]),
    'lengths': in_lengths,
  }

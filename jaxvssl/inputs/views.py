"""What a method asks the input pipeline for: views and extras.

A method module states its inputs declaratively and never touches tf.data:

    views = (
        ViewSpec('query', num_frames=16, stride=2, temporal_group='clip',
                 augment_group='q'),
        ViewSpec('key', num_frames=16, stride=2, temporal_group='clip',
                 augment_group='k'),
    )
    extras = (permutation_bank_extra(sampler.banks, name='sdp'),)
    ds = pipeline.make_train_dataset(cfg.data, views, extras=extras, ...)

ViewSpec semantics
------------------
* `temporal_group`: views with the same group share ONE window start; each
  view then reads `num_frames` frames at `stride` beginning `offset` frames
  after that start. The group's window is the union of its views (its span
  is max(offset + (num_frames - 1) * stride + 1)), and the start is drawn so
  that window fits in the video. `None` = a group of its own.
  Example (mlfo): a 32-frame window at stride s is
      A    = ViewSpec('a', 16, s, temporal_group='w', offset=0)
      B    = ViewSpec('b', 16, s, temporal_group='w', offset=16 * s)
      long = ViewSpec('long', 16, 2 * s, temporal_group='w', offset=0)
* `augment_group`: views with the same group get the SAME spatial
  augmentation draw (crop box, flip, colour, grayscale, blur). `None` = an
  independent draw. Draws never depend on the number of frames, so views of
  different lengths can share one.
* `sampler`: how the group's start is drawn:
    'random'   uniform over all starts where the window fits;
    'targeted' SCVRL: the clip's centre lies in 1-second window w drawn with
               p_w = softmax(motion_scores / beta) (data_cfg.targeted_beta;
               beta = inf is uniform over windows), see ops.targeted_start;
    'extra'    frame indices come from an extra's output (`indices_key`), e.g.
               the segment clips of rate_order. Such a view has no temporal
               group or offset; its `stride` is ignored.

Extras
------
An `Extra` is a named TF function `fn(example, seed) -> {key: tensor}` run on
every training example BEFORE any frame is decoded. `example` holds the
skip-decoded example ('video' tf.string [T], 'label', 'index' (int32 global
example index), 'num_frames' (int32, = T), and 'fps', 'motion_scores',
'video_id' when the data set has them). `seed` is a stateless seed `[2]`
derived from the example's seed and the extra's NAME, so adding or
reordering extras never changes another extra's or view's draws. Outputs
must have static shapes; they are batched next to the views under their
keys (declared in `keys` so collisions are caught when the pipeline is
built, not in the middle of training).

Ready-made extras: `permutation_bank_extra` (CACL shuffle-degree permutation
and label from per-class banks), `subset_shuffle_extra` (the same from the
released CACL code's sampler) and `segment_clip_extra` (rate_order segment
clips).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Callable, Mapping, Sequence

import numpy as np

from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()

from jaxvssl.inputs import ops, segments

SAMPLERS = ('random', 'targeted', 'extra')
# Keys every training batch has besides the views.
RESERVED_KEYS = ('label', 'index')

ExtraFn = Callable[[Mapping[str, tf.Tensor], tf.Tensor], Mapping[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """One clip view of a training example (see module docstring).

  Attributes:
    name: key of the view in the batch; float32 `[B, num_frames, S, S, 3]`.
    num_frames: frames in the clip.
    stride: source frames between consecutive clip frames.
    temporal_group: views with the same group (any str/int label) share one
      window start.
    offset: frames between the group's start and this view's first frame.
    augment_group: views with the same group share one spatial augmentation.
    sampler: 'random' | 'targeted' | 'extra'.
    indices_key: for sampler 'extra': the extra output holding int32
      `[num_frames]` absolute frame indices.
    crop_size: output side S; None = data_cfg.crop_size.
  """

  name: str
  num_frames: int
  stride: int = 1
  temporal_group: str | int | None = None
  offset: int = 0
  augment_group: str | int | None = None
  sampler: str = 'random'
  indices_key: str | None = None
  crop_size: int | None = None

  def __post_init__(self):
    where = f'ViewSpec {self.name!r}'
    if not self.name or self.name in RESERVED_KEYS:
      raise ValueError(f'{where}: name must be non-empty and not one of {RESERVED_KEYS}.')
    if self.num_frames < 1:
      raise ValueError(f'{where}: num_frames={self.num_frames} must be >= 1.')
    if self.stride < 1:
      raise ValueError(f'{where}: stride={self.stride} must be >= 1.')
    if self.offset < 0:
      raise ValueError(f'{where}: offset={self.offset} must be >= 0.')
    if self.sampler not in SAMPLERS:
      raise ValueError(f'{where}: sampler={self.sampler!r} not in {SAMPLERS}.')
    if (self.sampler == 'extra') != (self.indices_key is not None):
      raise ValueError(
        f'{where}: indices_key is required for, and only for, '
        f"sampler='extra' (got sampler={self.sampler!r}, "
        f'indices_key={self.indices_key!r}).'
      )
    if self.sampler == 'extra' and (self.temporal_group is not None or self.offset):
      raise ValueError(
        f"{where}: sampler='extra' takes its indices from "
        f'{self.indices_key!r}; temporal_group/offset do not apply.'
      )
    if self.crop_size is not None and self.crop_size < 1:
      raise ValueError(f'{where}: crop_size={self.crop_size} must be >= 1.')

  @property
  def span(self) -> int:
    """Frames from the group's start to this view's last frame, inclusive."""
    return self.offset + ops.clip_span(self.num_frames, self.stride)

  @property
  def temporal_key(self) -> str:
    return (
      f'group:{self.temporal_group}' if self.temporal_group is not None else f'view:{self.name}'
    )

  @property
  def augment_key(self) -> str:
    return f'group:{self.augment_group}' if self.augment_group is not None else f'view:{self.name}'


@dataclasses.dataclass(frozen=True)
class Extra:
  """A per-example TF function whose outputs are batched next to the views.

  Attributes:
    name: seeds are derived from it; must be unique among a method's extras.
    fn: `fn(example, seed) -> {key: tensor}` (stateless ops only).
    keys: the keys `fn` returns.
  """

  name: str
  fn: ExtraFn
  keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TemporalGroup:
  """Views sharing one window start; `span` is the window they need."""

  key: str
  sampler: str
  span: int
  views: tuple[ViewSpec, ...]


@dataclasses.dataclass(frozen=True)
class ViewPlan:
  """Validated views + extras, grouped the way the pipeline samples them."""

  views: tuple[ViewSpec, ...]
  temporal_groups: tuple[TemporalGroup, ...]
  extra_views: tuple[ViewSpec, ...]
  extras: tuple[Extra, ...]


def named_seed(seed: tf.Tensor, name: str) -> tf.Tensor:
  """A seed `[2]` derived from `seed` and a string, stable across runs."""
  return ops.fold_in(seed, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def plan_views(views: Sequence[ViewSpec], extras: Sequence[Extra] = ()) -> ViewPlan:
  """Validates views and extras together and groups views by temporal key."""
  views = tuple(views)
  extras = tuple(extras)
  if not views:
    raise ValueError('plan_views: at least one ViewSpec is required.')
  names = [v.name for v in views]
  if len(set(names)) != len(names):
    raise ValueError(f'plan_views: duplicate view names in {names}.')
  extra_names = [e.name for e in extras]
  if len(set(extra_names)) != len(extra_names):
    raise ValueError(f'plan_views: duplicate extra names in {extra_names}.')
  taken = set(names) | set(RESERVED_KEYS)
  extra_keys = set()
  for e in extras:
    for k in e.keys:
      if k in taken or k in extra_keys:
        raise ValueError(
          f'plan_views: extra {e.name!r} key {k!r} collides with a '
          f'view, a reserved key {RESERVED_KEYS} or another extra.'
        )
      extra_keys.add(k)
  for v in views:
    if v.sampler == 'extra' and v.indices_key not in extra_keys:
      raise ValueError(
        f'plan_views: view {v.name!r} reads indices_key='
        f'{v.indices_key!r}, which no extra provides ({sorted(extra_keys)}).'
      )

  groups: dict[str, list[ViewSpec]] = {}
  for v in views:
    if v.sampler != 'extra':
      groups.setdefault(v.temporal_key, []).append(v)
  temporal_groups = []
  for key, members in groups.items():
    samplers = {v.sampler for v in members}
    if len(samplers) != 1:
      raise ValueError(
        f'plan_views: temporal group {key!r} mixes samplers {sorted(samplers)}; '
        'views sharing a start must share its sampler.'
      )
    temporal_groups.append(
      TemporalGroup(key, samplers.pop(), max(v.span for v in members), tuple(members))
    )
  return ViewPlan(
    views, tuple(temporal_groups), tuple(v for v in views if v.sampler == 'extra'), extras
  )


# ----------------------------------------------------------------------------
# Ready-made extras.


def permutation_bank_extra(
  banks: np.ndarray, *, name: str = 'sdp', class_probs: Sequence[float] | None = None
) -> Extra:
  """Samples a frame permutation and its class from per-class banks.

  For CACL's shuffle-degree prediction: `banks[c]` holds permutations whose
  class is c (`jaxvssl.inputs.permutations.ShuffleDegreeSampler(...).banks`).
  The class is drawn from `class_probs` (None = uniform, the paper's
  uniform-degree sampling), then a bank row uniformly.

  Args:
    banks: int `[C, M, F]`.
    name: extra name and key prefix.
    class_probs: `[C]` probabilities, e.g. the natural distribution of
      degrees for the non-uniform ablation.
  Returns:
    Extra with keys f'{name}_perm' int32 `[F]` (the shuffled copy is
    clip[perm]) and f'{name}_label' int32 scalar.
  """
  banks = np.asarray(banks)
  if banks.ndim != 3 or 0 in banks.shape:
    raise ValueError(
      f'permutation_bank_extra {name!r}: banks must be a non-empty '
      f'[C, M, F] array, got shape {banks.shape}.'
    )
  num_classes, bank_size, _ = banks.shape
  if class_probs is None:
    logits = np.zeros([num_classes], np.float32)
  else:
    probs = np.asarray(class_probs, np.float64)
    if probs.shape != (num_classes,) or (probs < 0).any() or not probs.sum() > 0:
      raise ValueError(
        f'permutation_bank_extra {name!r}: class_probs must be {num_classes} '
        f'non-negative numbers with a positive sum, got {class_probs}.'
      )
    with np.errstate(divide='ignore'):
      logits = np.log(probs / probs.sum()).astype(np.float32)
  perm_key, label_key = f'{name}_perm', f'{name}_label'

  def fn(example, seed):
    del example
    class_seed, row_seed = tf.unstack(ops.split_seed(seed, 2))
    label = tf.random.stateless_categorical(
      tf.constant(logits)[None], 1, class_seed, dtype=tf.int32
    )[0, 0]
    row = tf.random.stateless_uniform([], row_seed, minval=0, maxval=bank_size, dtype=tf.int32)
    perm = tf.gather_nd(tf.constant(banks, tf.int32), tf.stack([label, row]))
    return {perm_key: perm, label_key: label}

  return Extra(name, fn, (perm_key, label_key))


def shuffle_degree_class_tf(perm: tf.Tensor) -> tf.Tensor:
  """Shuffle-degree class of one permutation int `[F]` (static F): int32 scalar.

  The Levenshtein distance d between `perm` and the identity 0..F-1 (every frame index one
  symbol; `jaxvssl.inputs.permutations.levenshtein`), as the class 0 for d = 0, else d - 1
  (`permutations.distance_to_class`). The DP runs row by row; inside a row the chain
  cur[j] = min(best[j - 1], cur[j - 1] + 1) is the closed form min_{l <= j} (v[l] + j - l).
  """
  f = perm.shape[0]
  if f is None:
    raise ValueError('shuffle_degree_class_tf: the permutation length must be static')
  a = tf.cast(perm, tf.int32)
  b = tf.range(f, dtype=tf.int32)
  idx = tf.range(f + 1, dtype=tf.int32)
  later = idx[None, :] > idx[:, None]  # [j, l]: l > j is not allowed
  big = tf.fill([f + 1, f + 1], tf.constant(4 * f + 4, tf.int32))
  prev = idx
  for i in range(1, f + 1):
    substitute = prev[:-1] + tf.cast(tf.not_equal(b, a[i - 1]), tf.int32)
    best = tf.minimum(substitute, prev[1:] + 1)  # [F]: best[j - 1] for j = 1..F
    v = tf.concat([tf.constant([i], tf.int32), best], axis=0)  # [F + 1], v[0] = cur[0] = i
    candidates = v[None, :] + idx[:, None] - idx[None, :]  # [j, l] = v[l] + j - l
    prev = tf.reduce_min(tf.where(later, big, candidates), axis=1)
  distance = prev[f]
  return tf.where(distance == 0, 0, distance - 1)


def subset_shuffle_extra(num_frames: int, *, name: str = 'sdp', uniform: bool = True) -> Extra:
  """The released CACL code's shuffle as an extra: `permutations.subset_shuffle` in TF.

  uniform=True: k ~ uniform{1..F} positions, chosen at random, permuted by a uniformly random
  permutation of themselves (what the released code calls uniform; not uniform over degrees).
  uniform=False: k = F, i.e. a uniformly random permutation of all F frames (the released code's
  non-uniform sampler, `random.shuffle`). The label is the permutation's shuffle-degree class,
  computed in-graph (`shuffle_degree_class_tf`), so no bank is needed and every draw is exact.

  Returns:
    Extra with keys f'{name}_perm' int32 `[F]` (the shuffled copy is clip[perm]) and
    f'{name}_label' int32 scalar.
  """
  f = int(num_frames)
  if f < 2:
    raise ValueError(f'subset_shuffle_extra {name!r}: num_frames must be >= 2, got {f}')
  perm_key, label_key = f'{name}_perm', f'{name}_label'
  identity = tf.range(f, dtype=tf.int32)

  def fn(example, seed):
    del example
    k_seed, order_seed, inner_seed = tf.unstack(ops.split_seed(seed, 3))
    if uniform:
      k = tf.random.stateless_uniform([], k_seed, minval=1, maxval=f + 1, dtype=tf.int32)
    else:
      k = tf.constant(f, tf.int32)
    # Positions in random order; ranks < k are the chosen positions.
    order = tf.argsort(tf.random.stateless_uniform([f], order_seed))
    chosen = identity < k
    # The chosen ranks permuted among themselves; the others sorted last and kept in place.
    keys = tf.where(
      chosen, tf.random.stateless_uniform([f], inner_seed), 2.0 + tf.cast(identity, tf.float32)
    )
    inner = tf.argsort(keys)
    # perm[order[r]] = order[inner[r]] for every rank r.
    perm = tf.tensor_scatter_nd_update(identity, order[:, None], tf.gather(order, inner))
    perm = tf.ensure_shape(perm, [f])
    return {perm_key: perm, label_key: shuffle_degree_class_tf(perm)}

  return Extra(name, fn, (perm_key, label_key))


def segment_clip_extra(*, name: str = 'segments', **segment_kwargs) -> Extra:
  """rate_order's multi-rate, shuffled-segment clip as an extra.

  Wraps `jaxvssl.inputs.segments.sample_segments_tf` (its docstring has the
  sampling rules; `segment_kwargs` are its static arguments: clip_length,
  num_segments, rate_range, min_segment_length, num_candidates, rate_draw,
  length_multiple). A view reads
  the frames with
      ViewSpec('query', num_frames=clip_length, sampler='extra',
               indices_key=f'{name}_indices').

  Returns:
    Extra with keys f'{name}_indices' int32 `[clip_length]` (input order),
    f'{name}_order_class' int32 scalar, f'{name}_permutation',
    f'{name}_rates', f'{name}_lengths' int32 `[num_segments]` (input order).
  """
  fields = ('indices', 'order_class', 'permutation', 'rates', 'lengths')
  keys = tuple(f'{name}_{f}' for f in fields)

  def fn(example, seed):
    out = segments.sample_segments_tf(seed, example['num_frames'], **segment_kwargs)
    return {f'{name}_{f}': out[f] for f in fields}

  return Extra(name, fn, keys)

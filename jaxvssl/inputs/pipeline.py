"""The tf.data video pipeline: sharded reading, deterministic sampling, views.

Stages (training):
  1. read     `load_split`: TFDS split, per-process shard, frames kept as JPEG
              bytes (SkipDecoding), each example tagged with its global
              'index'; or a caller's in-memory `source` (see `local_split`).
  2. order    `_example_stream`: epoch e is the local shard shuffled with a
              seed derived from (seed, process, e); every example gets its own
              stateless seed from (seed, process, e, position in epoch).
              Resuming at step s skips whole epochs arithmetically and the
              rest of one epoch BEFORE decoding, so it costs at most one
              epoch of record reading and no JPEG decoding.
  3. sample   per temporal group one window start ('random' | 'targeted'),
              extras (`views.Extra`), then only the needed frames are decoded
              (each distinct frame once).
  4. augment  per view: random (resized) crop, flip, colour jitter, grayscale,
              blur (one draw per augment group, same for every frame), then
              mean/std normalisation.
  5. batch    drop_remainder=True, prefetch.

Because every random draw is a stateless function of the example seed, the
batch at step s is a pure function of (seed, process_index, process_count,
s, data) -- independent of parallelism, and `start_step=s` reproduces the
stream an uninterrupted run would have seen from step s. (TF's shuffle op
mixes in the global TF seed: a program that calls `tf.random.set_seed` must
call it with the same value on resume; jaxvssl never calls it.)

Evaluation (`make_eval_dataset`): N uniformly spaced clips per video
(`ops.eval_clip_starts`), centre or three crops, no randomness (except the
fixed-seed frame shuffle for shuffle sensitivity), last batch padded with
valid=False rows so no video is dropped; every process yields the same number
of batches (multi-host collectives stay in step).

Input checks (warnings only, `input_checks`): every `make_*_dataset` compares the config with the
first videos of its shard and warns when a clip or crop does not fit them.

The data section of the config (`config.data`) is `data_config`; reading a split, `reading`;
the data-wait measurement around the batches, `timing`.

TensorFlow is the input pipeline only: GPUs are hidden from it on import.
"""

from __future__ import annotations

from typing import Sequence

import ml_collections

from jaxvssl.tf_setup import import_tensorflow

# TF must never grab an accelerator that JAX owns: hide GPUs before TFDS (or
# anything else) touches TF.
tf = import_tensorflow()

from jaxvssl.inputs import (
  data_config,  # pylint: disable=g-import-not-at-top,wrong-import-position
  input_checks,  # pylint: disable=g-import-not-at-top,wrong-import-position
  ops,  # pylint: disable=g-import-not-at-top,wrong-import-position
  reading,  # pylint: disable=g-import-not-at-top,wrong-import-position
)
from jaxvssl.inputs import device as device_keys  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvssl.inputs import views as views_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

ViewSpec = views_lib.ViewSpec
Extra = views_lib.Extra
# How far the host augments a training view (`_augment`, `host_stage`).
AUGMENT_STAGES = ('normalized', 'unit', 'crop')
# Label of the padding rows of an evaluation batch (valid=False).
PAD_LABEL = -1


# ----------------------------------------------------------------------------
# Deterministic example order.


def _root_seed(seed: int, process_index: int) -> tf.Tensor:
  return tf.constant([seed, process_index], tf.int64)


def _example_stream(
  ds: tf.data.Dataset,
  num_per_epoch: int | None,
  *,
  seed: int,
  process_index: int,
  start_position: int,
  shuffle_buffer: int,
) -> tf.data.Dataset:
  """An endless stream of `(element, seed [2])`, resumable at any position.

  Epoch e = `ds` shuffled with a seed derived from (seed, process, e); the
  element at position i of epoch e gets seed fold_in(seed, process, e, i).
  The stream starts at the `start_position`-th element (0-based) of the
  uninterrupted stream; earlier epochs are skipped without reading them.

  Args:
    ds: finite, re-iterable, fixed-order data set (one epoch).
    num_per_epoch: elements per epoch; only needed when start_position > 0.
  """
  root = _root_seed(seed, process_index)
  shuffle_root = views_lib.named_seed(root, 'shuffle')
  element_root = views_lib.named_seed(root, 'element')
  if start_position > 0:
    if not num_per_epoch:
      raise ValueError('pipeline: cannot resume in an empty data set.')
    start_epoch, skip = divmod(start_position, num_per_epoch)
  else:
    start_epoch, skip = 0, 0

  def epoch_dataset(epoch):
    epoch_ds = ds
    if shuffle_buffer > 1:
      shuffle_seed = tf.random.stateless_uniform(
        [], ops.fold_in(shuffle_root, epoch), minval=None, maxval=None, dtype=tf.int64
      )
      epoch_ds = epoch_ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
    epoch_ds = epoch_ds.enumerate().skip(
      tf.where(epoch == start_epoch, tf.constant(skip, tf.int64), tf.constant(0, tf.int64))
    )
    epoch_seed = ops.fold_in(element_root, epoch)
    return epoch_ds.map(reading.graph_fn(lambda i, el: (el, ops.fold_in(epoch_seed, i))))

  return tf.data.Dataset.counter(start_epoch).flat_map(reading.graph_fn(epoch_dataset))


def _options(cfg: ml_collections.ConfigDict) -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  if cfg.num_threads:
    options.threading.private_threadpool_size = cfg.num_threads
  return options


def _parallel(cfg: ml_collections.ConfigDict) -> int:
  return tf.data.AUTOTUNE if cfg.num_parallel_calls == -1 else cfg.num_parallel_calls


# ----------------------------------------------------------------------------
# Per-example processing.


def _augment(
  frames: tf.Tensor,
  seed: tf.Tensor,
  cfg: ml_collections.ConfigDict,
  crop_size: int,
  stage: str = 'normalized',
  cropped: bool = False,
) -> tf.Tensor:
  """Training spatial augmentation of `[T, H, W, 3]` float [0, 1], one draw per clip.

  cropped=True: `frames` are the crop already (`_decode_crop`, the same draw), resized to
  `crop_size`; the rest of the augmentation is the same.

  stage: how far the host goes (`AUGMENT_STAGES`): 'normalized' (everything, then mean/std: the
  default path), 'unit' (everything but the normalisation: [0, 1] pixels for uint8 transfer) or
  'crop' (the crop only; the device applies the rest with `augment_parameters`).
  Returns float32 `[T, crop_size, crop_size, 3]`.
  """
  crop_seed, flip_seed, color_seed, gray_seed, blur_seed = tf.unstack(ops.split_seed(seed, 5))
  if cropped:
    x = frames
  elif cfg.crop == 'random':
    x = ops.random_crop(frames, crop_seed, crop_size)
  else:
    x = ops.random_resized_crop(
      frames,
      crop_seed,
      crop_size,
      (cfg.min_area, cfg.max_area),
      (cfg.min_aspect_ratio, cfg.max_aspect_ratio),
      cfg.crop_max_attempts,
    )
  if stage == 'crop':
    return x
  x = ops.random_flip(x, flip_seed, cfg.flip_prob)
  x = ops.color_jitter(
    x,
    color_seed,
    tuple(cfg.color_jitter_strength),
    cfg.color_jitter_prob,
    cfg.color_jitter_random_order,
  )
  x = ops.random_grayscale(x, gray_seed, cfg.grayscale_prob)
  x = ops.random_gaussian_blur(
    x, blur_seed, cfg.blur_prob, tuple(cfg.blur_sigma), cfg.blur_truncate
  )
  if stage == 'unit':
    return x
  return ops.normalize(x, cfg.mean, cfg.std)


def augment_parameters(seed: tf.Tensor, cfg: ml_collections.ConfigDict) -> tf.Tensor:
  """The draws of `_augment` after its crop, as float32 `[device.NUM_PARAMS]`.

  Every value comes from the same stateless seeds, split the same way, as in `_augment` and the
  ops it calls (`ops.random_flip`, `ops.color_jitter`, `ops.random_grayscale`,
  `ops.random_gaussian_blur`), so the device applying them (`jaxvssl.inputs.device.augment`)
  reproduces the host's augmentation of the same example. Columns: `device.PARAM_NAMES`.
  """
  _, flip_seed, color_seed, gray_seed, blur_seed = tf.unstack(ops.split_seed(seed, 5))
  false = tf.constant(False)
  flip = ops._bernoulli(flip_seed, cfg.flip_prob) if cfg.flip_prob > 0 else false
  b, c, sat, h = (float(v) for v in cfg.color_jitter_strength)
  apply_seed, order_seed, b_seed, c_seed, s_seed, h_seed = tf.unstack(ops.split_seed(color_seed, 6))
  factor = lambda sd, v: ops._uniform(sd, max(0.0, 1.0 - v), 1.0 + v)
  jitter = false
  if cfg.color_jitter_prob > 0 and any((b, c, sat, h)):
    jitter = ops._bernoulli(apply_seed, cfg.color_jitter_prob)
  if cfg.color_jitter_random_order:
    order = ops.random_permutation(4, order_seed)
  else:
    order = tf.range(4, dtype=tf.int32)
  gray = ops._bernoulli(gray_seed, cfg.grayscale_prob) if cfg.grayscale_prob > 0 else false
  blur_apply_seed, sigma_seed = tf.unstack(ops.split_seed(blur_seed, 2))
  sigma = ops._uniform(sigma_seed, float(cfg.blur_sigma[0]), float(cfg.blur_sigma[1]))
  blur = ops._bernoulli(blur_apply_seed, cfg.blur_prob) if cfg.blur_prob > 0 else false
  as_float = lambda v: tf.cast(v, tf.float32)
  values = [
    as_float(flip),
    as_float(jitter),
    factor(b_seed, b),
    factor(c_seed, c),
    factor(s_seed, sat),
    ops._uniform(h_seed, -h, h) if h > 0 else tf.constant(0.0),
  ]
  values += [as_float(order[i]) for i in range(4)]
  values += [as_float(gray), as_float(blur), sigma]
  return tf.stack(values)


def to_transfer_dtype(x: tf.Tensor, cfg: ml_collections.ConfigDict) -> tf.Tensor:
  """[0, 1] pixels in the dtype that crosses to the device: uint8 rounds to the nearest 1/255."""
  if cfg.transfer_dtype == 'uint8':
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
  return x


def host_stage(cfg: ml_collections.ConfigDict, device_transfer: bool = True) -> str:
  """How far the host augments (`_augment`'s stage) for `cfg`'s transfer settings.

  device_transfer=False: always 'normalized' (a consumer that does not run
  `jaxvssl.inputs.device.prepare_batch`, e.g. BatchNorm re-estimation or finetuning).
  """
  if not device_transfer:
    return 'normalized'
  if cfg.device_augment:
    return 'crop'
  return 'unit' if cfg.transfer_dtype == 'uint8' else 'normalized'


class _Augmenter:
  """`_augment` as one traced function per output size, called for every view.

  Tracing the augmentation graph once and calling it per view (instead of
  inlining a copy per view) keeps pipeline builds fast for methods with many
  views; the computation is the same.
  """

  def __init__(self, cfg: ml_collections.ConfigDict, stage: str = 'normalized'):
    self._cfg = cfg
    self._stage = stage
    self._fns = {}

  def __call__(
    self, frames: tf.Tensor, seed: tf.Tensor, crop_size: int, cropped: bool = False
  ) -> tf.Tensor:
    key = (crop_size, cropped)
    if key not in self._fns:
      self._fns[key] = tf.function(
        lambda x, s: _augment(x, s, self._cfg, crop_size, self._stage, cropped),
        input_signature=[
          tf.TensorSpec([None, None, None, 3], tf.float32),
          tf.TensorSpec([2], tf.int64),
        ],
        autograph=False,
      )
    return self._fns[key](frames, tf.cast(seed, tf.int64))


def _decode_crop(
  video: tf.Tensor,
  indices: tf.Tensor,
  seed: tf.Tensor,
  cfg: ml_collections.ConfigDict,
  crop_size: int,
) -> tf.Tensor:
  """The training crop of `video[indices]`, decoding only its window of each JPEG.

  The window is the one `_augment` draws from the same seed (`ops.random_crop` /
  `ops.random_resized_crop` need only the frame size, read from the first frame's JPEG header),
  so the pixels equal decode-then-crop (tested). A 'random' crop needs frames at least
  crop_size on both sides (`_decode_crop_or_full` checks).

  Returns:
    float32 [0, 1] `[T, crop_size, crop_size, 3]`.
  """
  crop_seed = tf.unstack(ops.split_seed(tf.cast(seed, tf.int64), 5))[0]
  picked = tf.gather(video, indices)
  shape = tf.io.extract_jpeg_shape(picked[0])  # [H, W, C]
  if cfg.crop == 'random':
    y_seed, x_seed = tf.unstack(ops.split_seed(crop_seed, 2))
    y = tf.random.stateless_uniform(
      [], y_seed, minval=0, maxval=shape[0] - crop_size + 1, dtype=tf.int32
    )
    x = tf.random.stateless_uniform(
      [], x_seed, minval=0, maxval=shape[1] - crop_size + 1, dtype=tf.int32
    )
    window = tf.stack([y, x, crop_size, crop_size])
  else:
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      image_size=tf.concat([shape[:2], [3]], 0),
      bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=crop_seed,
      min_object_covered=float(cfg.min_area),
      aspect_ratio_range=[cfg.min_aspect_ratio, cfg.max_aspect_ratio],
      area_range=[cfg.min_area, cfg.max_area],
      max_attempts=cfg.crop_max_attempts,
      use_image_if_no_bounding_boxes=True,
    )
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
  frames = tf.map_fn(
    lambda jpeg: tf.image.decode_and_crop_jpeg(jpeg, window, channels=3),
    picked,
    fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
  )
  frames = ops.to_float(frames)
  if cfg.crop != 'random':
    frames = tf.image.resize(frames, [crop_size, crop_size])
  return tf.ensure_shape(frames, [None, crop_size, crop_size, 3])


def _decode(video: tf.Tensor, indices: tf.Tensor, resize_short_side: int | None) -> tf.Tensor:
  """float32 [0, 1] frames `video[indices]`, each distinct frame decoded once."""
  unique, inverse = tf.unique(indices)
  frames = ops.to_float(ops.decode_frames(video, unique))
  if resize_short_side:
    frames = ops.resize_smallest(frames, resize_short_side)
  return tf.gather(frames, inverse)


def _decode_crop_or_full(
  video: tf.Tensor,
  indices: tf.Tensor,
  seed: tf.Tensor,
  cfg: ml_collections.ConfigDict,
  crop_size: int,
  augment: _Augmenter,
) -> tf.Tensor:
  """`augment` of `video[indices]` decoding only the crop window where it can (`_decode_crop`).

  A 'random' crop larger than the frames falls back to whole frames (upsampled by the crop).
  """
  with_window = lambda: augment(
    _decode_crop(video, indices, seed, cfg, crop_size), seed, crop_size, cropped=True
  )
  if cfg.crop != 'random':
    return with_window()
  shape = tf.io.extract_jpeg_shape(tf.gather(video, indices[:1])[0])
  fits = tf.minimum(shape[0], shape[1]) >= crop_size
  whole = lambda: augment(_decode(video, indices, None), seed, crop_size)
  return tf.cond(fits, with_window, whole)


def _group_start(group: views_lib.TemporalGroup, example, num_available, seed, cfg):
  if group.sampler == 'random':
    return ops.sample_start(num_available, group.span, seed)
  scores = reading.require(example, 'motion_scores', f'targeted sampling of {group.key}')
  fps = reading.require(example, 'fps', f'targeted sampling of {group.key}')
  return ops.targeted_start(
    num_available,
    group.span,
    scores,
    fps,
    float(cfg.targeted_beta),
    seed,
    float(cfg.motion_window_seconds),
  )


def make_train_example_fn(
  data_cfg: ml_collections.ConfigDict, plan: views_lib.ViewPlan, device_transfer: bool = False
):
  """`fn(example, seed) -> batch row` for one training example (see module doc)."""
  cfg = data_cfg
  stage = host_stage(cfg, device_transfer)
  augment = _Augmenter(cfg, stage)

  def fn(example, seed):
    video = reading.require(example, 'video', 'decoding')
    n = tf.shape(video)[0]
    example = {**example, 'num_frames': n}
    out = {}
    for extra in plan.extras:
      produced = dict(extra.fn(example, views_lib.named_seed(seed, 'extra:' + extra.name)))
      if set(produced) != set(extra.keys):
        raise ValueError(
          f'pipeline: extra {extra.name!r} returned keys {sorted(produced)}, '
          f'declared {sorted(extra.keys)}.'
        )
      out.update(produced)

    indices = {}
    for group in plan.temporal_groups:
      start_seed, jitter_seed = tf.unstack(
        ops.split_seed(views_lib.named_seed(seed, 'time:' + group.key), 2)
      )
      start = _group_start(group, example, n, start_seed, cfg)
      for v in group.views:
        idx = ops.clip_indices(start + v.offset, v.num_frames, v.stride, n, cfg.pad_mode)
        indices[v.name] = ops.temporal_jitter(idx, cfg.temporal_jitter, n, jitter_seed)
    for v in plan.extra_views:
      idx = tf.ensure_shape(tf.cast(out[v.indices_key], tf.int32), [v.num_frames])
      indices[v.name] = ops.wrap_indices(idx, n, cfg.pad_mode)

    names = [v.name for v in plan.views]
    if cfg.decode_crop:
      frames = None  # each view decodes its own crop window (_decode_crop)
    else:
      frames = _decode(video, tf.concat([indices[k] for k in names], 0), cfg.resize_short_side)
    begin = 0
    for v in plan.views:
      size = v.crop_size or cfg.crop_size
      aug_seed = views_lib.named_seed(seed, 'aug:' + v.augment_key)
      if frames is None:
        clip = _decode_crop_or_full(video, indices[v.name], aug_seed, cfg, size, augment)
      else:
        clip = augment(frames[begin : begin + v.num_frames], aug_seed, size)
      begin += v.num_frames
      if stage != 'normalized':  # pixels for the device (jaxvssl/inputs/device.py)
        clip = to_transfer_dtype(clip, cfg)
      if stage == 'crop':
        out[device_keys.AUGMENT_PREFIX + v.name] = augment_parameters(
          tf.cast(aug_seed, tf.int64), cfg
        )
      out[v.name] = tf.ensure_shape(clip, [v.num_frames, size, size, 3])
    out['label'] = tf.cast(reading.require(example, 'label', 'the label'), tf.int32)
    out['index'] = tf.cast(example['index'], tf.int32)
    return out

  return fn


# ----------------------------------------------------------------------------
# Public data sets.


def make_train_dataset(
  data_cfg: ml_collections.ConfigDict,
  views: Sequence[ViewSpec],
  *,
  global_batch_size: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
  start_step: int = 0,
  source: tf.data.Dataset | None = None,
  extras: Sequence[Extra] = (),
  device_transfer: bool = False,
) -> tf.data.Dataset:
  """Endless training batches of this process.

  Args:
    data_cfg: see `default_data_config`.
    views: the method's ViewSpecs.
    global_batch_size: over all processes; must be divisible by process_count.
    seed: data seed; the stream is a pure function of (seed, step).
    process_index, process_count: this process and how many read.
    start_step: first step to produce (resume): the batches equal those an
      uninterrupted run yields from that step on.
    source: in-memory examples (TFDS format, SkipDecoding) instead of TFDS
      `data_cfg.name` / `data_cfg.train_split`.
    extras: per-example TF functions, see `views.Extra`.
    device_transfer: honour data_cfg.transfer_dtype / device_augment (the caller runs
      `jaxvssl.inputs.device.prepare_batch` on the device, as the training loop does);
      False: normalised float32 views whatever they say.
  Returns:
    Dataset of dicts, B = global_batch_size // process_count:
      view.name: float32 [B, T, S, S, 3] (normalised) for every view; with
        data_cfg.transfer_dtype='uint8' uint8 pixels, with data_cfg.device_augment the crop
        only plus 'augment/<view>' float32 [B, NUM_PARAMS] (`jaxvssl.inputs.device`, whose
        `prepare_batch` turns them into the normalised views on the device);
      'label': int32 [B]; 'index': int32 [B] (position in the split);
      every extra key: [B, ...].
  """
  if global_batch_size % process_count:
    raise ValueError(
      f'make_train_dataset: global_batch_size={global_batch_size} is not '
      f'divisible by process_count={process_count}.'
    )
  if start_step < 0:
    raise ValueError(f'make_train_dataset: start_step={start_step} must be >= 0.')
  local_batch = global_batch_size // process_count
  plan = views_lib.plan_views(views, extras)
  local = reading.local_split(
    data_cfg,
    data_cfg.train_split,
    source=source,
    process_index=process_index,
    process_count=process_count,
  )
  if local.num_examples < local_batch:
    raise ValueError(
      f'make_train_dataset: {local.num_examples} examples in process '
      f'{process_index} cannot fill a local batch of {local_batch}.'
    )
  input_checks.check_train_fit(
    data_cfg,
    plan,
    input_checks.probe(local.dataset),
    input_checks.data_name(data_cfg, data_cfg.train_split, source),
  )
  ds = local.dataset
  if data_cfg.cache:
    ds = ds.cache()
  ds = _example_stream(
    ds,
    local.num_examples,
    seed=seed,
    process_index=process_index,
    start_position=start_step * local_batch,
    shuffle_buffer=data_cfg.shuffle_buffer,
  )
  ds = ds.map(
    reading.graph_fn(make_train_example_fn(data_cfg, plan, device_transfer)),
    num_parallel_calls=_parallel(data_cfg),
    deterministic=True,
  )
  ds = ds.batch(local_batch, drop_remainder=True)
  ds = ds.prefetch(data_cfg.prefetch)
  return ds.with_options(_options(data_cfg))


def make_eval_example_fn(
  data_cfg: ml_collections.ConfigDict,
  *,
  num_clips: int,
  num_frames: int,
  stride: int,
  crop: str,
  shuffle_frames: bool,
):
  """`fn(example) -> row` with N = num_clips x crops clips (clip-major order)."""
  cfg = data_cfg
  size = cfg.crop_size
  num_crops = data_config.EVAL_CROPS[crop]
  resize = cfg.eval_resize_short_side or cfg.resize_short_side
  shuffle_root = views_lib.named_seed(
    tf.constant([cfg.eval_shuffle_seed, 0], tf.int64), 'eval_shuffle'
  )

  def fn(example):
    video = reading.require(example, 'video', 'decoding')
    n = tf.shape(video)[0]
    idx = ops.eval_clip_indices(n, num_clips, num_frames, stride, cfg.pad_mode)
    frames = _decode(video, tf.reshape(idx, [-1]), resize)  # [N*T, H, W, 3]
    if not resize:
      frames = ops.ensure_min_size(frames, size)
    if crop == 'center':
      clips = tf.reshape(ops.center_crop(frames, size), [num_clips, num_frames, size, size, 3])
    else:
      crops = tf.reshape(ops.three_crop(frames, size), [3, num_clips, num_frames, size, size, 3])
      clips = tf.reshape(
        tf.transpose(crops, [1, 0, 2, 3, 4, 5]), [num_clips * 3, num_frames, size, size, 3]
      )
    if shuffle_frames:
      # One fixed permutation per temporal clip, shared by its spatial crops,
      # seeded by (eval_shuffle_seed, video index, clip): the same on every run.
      video_seed = ops.fold_in(shuffle_root, example['index'])
      perms = tf.stack(
        [
          ops.non_identity_permutation(num_frames, ops.fold_in(video_seed, c))
          for c in range(num_clips)
        ]
      )
      perms = tf.repeat(perms, num_crops, axis=0)  # [N, T]
      clips = tf.gather(clips, perms, axis=1, batch_dims=1)
    clips = ops.normalize(clips, cfg.mean, cfg.std)
    video_id = example.get('video_id')
    if video_id is None:
      video_id = tf.strings.as_string(example['index'])
    return {
      'clips': tf.ensure_shape(clips, [num_clips * num_crops, num_frames, size, size, 3]),
      'label': tf.cast(reading.require(example, 'label', 'the label'), tf.int32),
      'video_id': tf.ensure_shape(tf.cast(video_id, tf.string), []),
      'valid': tf.constant(True),
    }

  return fn


def make_eval_dataset(
  data_cfg: ml_collections.ConfigDict,
  split: str | None = None,
  *,
  batch_size: int,
  num_clips: int,
  num_frames: int | None = None,
  stride: int | None = None,
  crop: str | None = None,
  shuffle_frames: bool = False,
  source: tf.data.Dataset | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> tf.data.Dataset:
  """One deterministic pass over this process's shard of an evaluation split.

  Args:
    data_cfg: see `default_data_config`.
    split: TFDS split (None = data_cfg.eval_split); ignored with `source`.
    batch_size: rows per batch of THIS process (the global eval batch is
      batch_size * process_count).
    num_clips: uniformly spaced clips per video (e.g. config.evaluation.num_clips).
    num_frames, stride: clip shape (None = data_cfg.num_frames / stride).
    crop: 'center' | 'three_crop' (None = data_cfg.eval_crop).
    shuffle_frames: permute the frames of every clip with a fixed seed
      (data_cfg.eval_shuffle_seed), never the identity: shuffle sensitivity.
    source: in-memory examples instead of TFDS.
    process_index, process_count: sharding; every process yields the same
      number of batches, ceil(ceil(total / process_count) / batch_size).
  Returns:
    Dataset of dicts:
      'clips': float32 [B, N, T, S, S, 3], N = num_clips * crops, clip-major
               (row c * crops + k = clip c, crop k; crops left/centre/right
               or top/centre/bottom);
      'label': int32 [B] (-1 on padding rows);
      'video_id': string [B] ('' on padding rows);
      'valid': bool [B], False on padding rows.
  """
  num_frames = data_cfg.num_frames if num_frames is None else num_frames
  stride = data_cfg.stride if stride is None else stride
  crop = data_cfg.eval_crop if crop is None else crop
  if crop not in data_config.EVAL_CROPS:
    raise ValueError(f'make_eval_dataset: crop={crop!r} not in {tuple(data_config.EVAL_CROPS)}.')
  if batch_size < 1 or num_clips < 1 or num_frames < 1 or stride < 1:
    raise ValueError(
      f'make_eval_dataset: batch_size={batch_size}, num_clips={num_clips}, '
      f'num_frames={num_frames}, stride={stride} must all be >= 1.'
    )
  if shuffle_frames and num_frames < 2:
    raise ValueError('make_eval_dataset: shuffle_frames needs num_frames >= 2.')
  local = reading.local_split(
    data_cfg,
    split or data_cfg.eval_split,
    source=source,
    process_index=process_index,
    process_count=process_count,
  )
  probe = input_checks.probe(local.dataset)
  if probe is not None:
    name = input_checks.data_name(data_cfg, split or data_cfg.eval_split, source)
    clip = [('evaluation clip', num_frames, stride, 0)]
    input_checks.check_clip_length(
      'evaluation', probe, ops.clip_span(num_frames, stride), clip, data_cfg, name
    )
    resize_key = (
      'config.data.eval_resize_short_side'
      if data_cfg.eval_resize_short_side
      else 'config.data.resize_short_side'
    )
    resize = data_cfg.eval_resize_short_side or data_cfg.resize_short_side
    input_checks.check_crop(
      'evaluation',
      probe,
      {'config.data.crop_size': data_cfg.crop_size},
      resize,
      resize_key,
      name,
      # With a resize, the centre crop pads: ops.center_crop.
      effect='zero-padded at its borders' if resize else 'upsampled',
    )
  fn = make_eval_example_fn(
    data_cfg,
    num_clips=num_clips,
    num_frames=num_frames,
    stride=stride,
    crop=crop,
    shuffle_frames=shuffle_frames,
  )
  ds = local.dataset.map(
    reading.graph_fn(fn), num_parallel_calls=_parallel(data_cfg), deterministic=True
  )
  num_batches = -(-local.max_examples // batch_size)
  num_pad = num_batches * batch_size - local.num_examples
  if num_pad:
    pad = {
      'clips': tf.zeros(ds.element_spec['clips'].shape, tf.float32),
      'label': tf.constant(PAD_LABEL, tf.int32),
      'video_id': tf.constant('', tf.string),
      'valid': tf.constant(False),
    }
    ds = ds.concatenate(tf.data.Dataset.from_tensors(pad).repeat(num_pad))
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(data_cfg.prefetch)
  return ds.with_options(_options(data_cfg))


def make_frame_dataset(
  data_cfg: ml_collections.ConfigDict,
  *,
  global_batch_size: int,
  seed: int,
  frame_step: int | None = None,
  split: str | None = None,
  crop_size: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  start_step: int = 0,
  source: tf.data.Dataset | None = None,
  difference_stride: int = 0,
  device_transfer: bool = False,
) -> tf.data.Dataset:
  """Endless batches of single frames with two augmentations (image MoCo).

  Every `frame_step`-th frame (0, k, 2k, ...) of every video of the split is
  one element (CACL's frame-encoder pretraining set); elements are shuffled
  per epoch and seeded exactly like `make_train_dataset`, so the stream is a
  pure function of (seed, step). Resuming (start_step > 0) counts the frames
  of the shard once (one pass of record reading, no decoding).

  difference_stride s > 0: each element is instead the difference image
  frame[t + s] - frame[t] (both frames through the SAME augmentation, then
  subtracted, as a residual-input backbone sees its clip), for the frames t
  with t + s inside the video: a frame encoder for residual clips.

  device_transfer: as in `make_train_dataset` (difference images stay float32 regardless).

  Returns:
    Dataset of dicts, B = global_batch_size // process_count:
      'query', 'key': float32 [B, S, S, 3], two independent augmentations (uint8 pixels with
        transfer_dtype='uint8', plus 'augment/query', 'augment/key' with device_augment,
        unless difference_stride > 0: `jaxvssl.inputs.device.prepare_batch`);
      'label': int32 [B] (the video's); 'index': int32 [B] (the video's
      position in the split); 'frame_index': int32 [B].
  """
  k = data_cfg.frame_step if frame_step is None else frame_step
  size = data_cfg.crop_size if crop_size is None else crop_size
  if k < 1:
    raise ValueError(f'make_frame_dataset: frame_step={k} must be >= 1.')
  if difference_stride < 0:
    raise ValueError(f'make_frame_dataset: difference_stride={difference_stride} must be >= 0.')
  if global_batch_size % process_count:
    raise ValueError(
      f'make_frame_dataset: global_batch_size={global_batch_size} is not '
      f'divisible by process_count={process_count}.'
    )
  local_batch = global_batch_size // process_count
  local = reading.local_split(
    data_cfg,
    split or data_cfg.train_split,
    source=source,
    process_index=process_index,
    process_count=process_count,
  )
  probe = input_checks.probe(local.dataset)
  if probe is not None:
    crop_key = 'config.data.crop_size' if crop_size is None else 'crop_size (argument)'
    input_checks.check_crop(
      'frame',
      probe,
      {crop_key: size},
      data_cfg.resize_short_side,
      'config.data.resize_short_side',
      input_checks.data_name(data_cfg, split or data_cfg.train_split, source),
    )

  last = difference_stride  # frames t need t + difference_stride inside the video

  def video_frames(example):
    video = reading.require(example, 'video', 'decoding')
    frame_index = tf.range(0, tf.shape(video)[0] - last, k, dtype=tf.int32)
    count = tf.shape(frame_index)[0]
    later = tf.gather(video, frame_index + difference_stride) if difference_stride else None
    return tf.data.Dataset.from_tensor_slices(
      {
        'frame': tf.gather(video, frame_index),
        **({'later_frame': later} if difference_stride else {}),
        'frame_index': frame_index,
        'label': tf.fill(
          [count], tf.cast(reading.require(example, 'label', 'the label'), tf.int32)
        ),
        'index': tf.fill([count], example['index']),
      }
    )

  frames = local.dataset.flat_map(reading.graph_fn(video_frames))
  if data_cfg.cache:
    frames = frames.cache()
  num_per_epoch = None
  if start_step > 0:
    num_per_epoch = int(
      local.dataset.reduce(
        tf.constant(0, tf.int64),
        lambda c, ex: (
          c + tf.cast(tf.maximum(tf.shape(ex['video'])[0] - last + k - 1, 0) // k, tf.int64)
        ),
      )
    )
  ds = _example_stream(
    frames,
    num_per_epoch,
    seed=seed,
    process_index=process_index,
    start_position=start_step * local_batch,
    shuffle_buffer=data_cfg.frame_shuffle_buffer,
  )
  cfg = data_cfg
  # Difference images are signed: they are formed after the full augmentation and leave the
  # host normalised float32 whatever transfer_dtype / device_augment say (docs/input_pipeline.md).
  stage = 'normalized' if difference_stride else host_stage(cfg, device_transfer)
  augment = _Augmenter(cfg, stage)

  def image(clip, key, elem_seed):
    """[1 or 2, H, W, 3] decoded frames -> the augmented [S, S, 3] element of view `key`."""
    clip = augment(clip, views_lib.named_seed(elem_seed, 'aug:' + key), size)
    if stage != 'normalized':
      clip = to_transfer_dtype(clip, cfg)
    return tf.ensure_shape(clip[-1] - clip[0] if difference_stride else clip[0], [size, size, 3])

  def fn(element, elem_seed):
    names = ('frame', 'later_frame') if difference_stride else ('frame',)
    frame = tf.stack(
      [ops.to_float(tf.io.decode_jpeg(element[n], channels=3)) for n in names]
    )  # [1 or 2, H, W, 3]
    if cfg.resize_short_side:
      frame = ops.resize_smallest(frame, cfg.resize_short_side)
    out = {key: image(frame, key, elem_seed) for key in ('query', 'key')}
    if stage == 'crop':
      for key in ('query', 'key'):
        aug_seed = tf.cast(views_lib.named_seed(elem_seed, 'aug:' + key), tf.int64)
        out[device_keys.AUGMENT_PREFIX + key] = augment_parameters(aug_seed, cfg)
    out.update(label=element['label'], index=element['index'], frame_index=element['frame_index'])
    return out

  ds = ds.map(reading.graph_fn(fn), num_parallel_calls=_parallel(data_cfg), deterministic=True)
  ds = ds.batch(local_batch, drop_remainder=True).prefetch(data_cfg.prefetch)
  return ds.with_options(_options(data_cfg))

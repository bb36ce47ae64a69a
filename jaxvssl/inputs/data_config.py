"""The data section of a config (`config.data`): every setting of the input pipeline with its
default (`default_data_config`), and the one check of its values (`check_data_config`), done when
a config loads."""

from __future__ import annotations

from typing import Any, Callable

import ml_collections
from ml_collections import config_dict

from jaxvssl.errors import ConfigError
from jaxvssl.inputs import ops

EVAL_CROPS = {'center': 1, 'three_crop': 3}
# Training crops: 'random_resized' (Inception-style: area and aspect jitter, resized to the
# output size) | 'random' (a plain crop of the output size, no resampling: C3D/CACL style).
TRAIN_CROPS = ('random_resized', 'random')
# What training views cross to the device as (`default_data_config`, transfer_dtype).
TRANSFER_DTYPES = ('float32', 'uint8')


def default_data_config() -> ml_collections.ConfigDict:
  """Every setting of the input pipeline, with its default.

  Data set:
    name, data_dir          TFDS builder name and directory (None = TFDS default).
    train_split, eval_split TFDS split strings ('train', 'test', 'train[:90%]', ...).
  Clips:
    num_frames, stride      default clip length / frame interval (eval, and
                            what method configs usually copy into ViewSpecs).
    pad_mode                'clamp' (repeat the last frame) | 'loop' (wrap
                            around) for videos shorter than a clip, ops doc.
    temporal_jitter         max frames each index moves (0 = off; order kept).
    targeted_beta           SCVRL softmax temperature of targeted sampling
                            (inf = uniform over windows).
    motion_window_seconds   window length the stored motion scores used.
  Spatial (training):
    crop_size               output side of every view.
    resize_short_side       resize frames (short side) before cropping; None =
                            keep the stored size (builders store 128).
    crop                    'random_resized' (area and aspect jitter, then
                            resized to crop_size) | 'random' (a plain
                            crop_size crop, no scale jitter: CACL's crop).
    min_area, max_area      random resized crop area fraction range.
    min_aspect_ratio, max_aspect_ratio  crop width/height range.
    crop_max_attempts       draws before the whole frame is used.
    flip_prob               horizontal flip probability.
    color_jitter_strength   (brightness, contrast, saturation, hue).
    color_jitter_prob       probability the jitter is applied.
    color_jitter_random_order  apply the four adjustments in random order.
    grayscale_prob          probability of converting to grayscale.
    blur_prob, blur_sigma   Gaussian blur probability and sigma range.
    blur_truncate           kernel radius = ceil(blur_truncate * sigma).
    mean, std               per-channel normalisation of [0, 1] pixels.
  Evaluation (the number of clips per video is the caller's `num_clips`):
    eval_crop               'center' | 'three_crop'.
    eval_resize_short_side  short side before the eval crop; None = use
                            resize_short_side (then the stored size).
    eval_shuffle_seed       seed of the frame permutations of shuffle_frames.
  Frame data set (CACL's image MoCo):
    frame_step              take every frame_step-th frame of each video.
    frame_shuffle_buffer    shuffle buffer in frames.
  tf.data:
    shuffle_buffer          examples (whole videos as JPEG bytes: memory!).
    num_parallel_calls      map parallelism (-1 = AUTOTUNE).
    prefetch                batches prefetched.
    cache                   cache the skip-decoded examples in memory (small
                            data sets such as synthetic_motion).
    num_threads             private thread pool size (0 = TF's default pool).
  Host -> device (docs/input_pipeline.md, "Accelerator input"; the defaults are the
  original host-only path):
    transfer_dtype          'float32' (the host normalises) | 'uint8' (training views
                            cross as uint8 pixels, normalised on the device inside the
                            jitted step: a quarter of the bytes).
    device_augment          True: the host decodes and crops only; flip, colour jitter,
                            grayscale, blur and normalisation run on the device with
                            parameters drawn on the host from the same seeds.
    decode_crop             True: decode only the crop window of each frame
                            (tf.image.decode_and_crop_jpeg) where the crop is known
                            before decoding (resize_short_side None).
    device_prefetch         batches put on the device ahead of the step (0: each batch
                            is put when the step before it has been dispatched).

  `check_data_config` checks every value (when a config loads); the functions of this module
  assume a checked section.
  """
  c = ml_collections.ConfigDict()
  c.name = 'synthetic_motion'
  c.data_dir = config_dict.placeholder(str)
  c.train_split = 'train'
  c.eval_split = 'test'

  c.num_frames = 16
  c.stride = 2
  c.pad_mode = 'clamp'
  c.temporal_jitter = 0
  c.targeted_beta = 5.0
  c.motion_window_seconds = 1.0

  c.crop_size = 112
  c.resize_short_side = config_dict.placeholder(int)
  c.crop = 'random_resized'
  c.min_area = 0.3
  c.max_area = 1.0
  c.min_aspect_ratio = 3 / 4
  c.max_aspect_ratio = 4 / 3
  c.crop_max_attempts = 10
  c.flip_prob = 0.5
  c.color_jitter_strength = (0.4, 0.4, 0.4, 0.1)
  c.color_jitter_prob = 0.8
  c.color_jitter_random_order = True
  c.grayscale_prob = 0.2
  c.blur_prob = 0.5
  c.blur_sigma = (0.1, 2.0)
  c.blur_truncate = 3.0
  c.mean = (0.485, 0.456, 0.406)
  c.std = (0.229, 0.224, 0.225)

  c.eval_crop = 'center'
  c.eval_resize_short_side = config_dict.placeholder(int)
  c.eval_shuffle_seed = 0

  c.frame_step = 10
  c.frame_shuffle_buffer = 16384

  c.shuffle_buffer = 1024
  c.num_parallel_calls = -1
  c.prefetch = 2
  c.cache = False
  c.num_threads = 0

  c.transfer_dtype = 'float32'
  c.device_augment = False
  c.decode_crop = False
  c.device_prefetch = 0
  return c


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any, count: int) -> bool:
  return (
    isinstance(value, (tuple, list)) and len(value) == count and all(_is_number(v) for v in value)
  )


def _probability(value: Any, data: ml_collections.ConfigDict) -> bool:
  return _is_number(value) and 0 <= value <= 1


def _optional_side(value: Any, data: ml_collections.ConfigDict) -> bool:
  return value is None or (_is_int(value) and value >= 1)


def _name(value: Any, data: ml_collections.ConfigDict) -> bool:
  return isinstance(value, str) and bool(value)


def _int_at_least(low: int) -> Callable[[Any, ml_collections.ConfigDict], bool]:
  return lambda value, data: _is_int(value) and value >= low


def _flag(value: Any, data: ml_collections.ConfigDict) -> bool:
  return isinstance(value, bool)


# (key, is the value valid given the whole data section, what to do otherwise), in the order of
# `default_data_config`; every key of the data section has at least one entry. `{key}` fields of
# the message are filled from the section.
_DATA_CHECKS: tuple[tuple[str, Callable[[Any, ml_collections.ConfigDict], bool], str], ...] = (
  ('name', _name, "set the TFDS builder name, e.g. 'synthetic_motion/default'"),
  (
    'data_dir',
    lambda v, d: v is None or _name(v, d),
    'set a TFDS data directory, or None for the TFDS default',
  ),
  ('train_split', _name, "set a TFDS split string, e.g. 'train' or 'train[:90%]'"),
  ('eval_split', _name, "set a TFDS split string, e.g. 'test'"),
  ('num_frames', _int_at_least(1), 'use an integer >= 1 (frames per clip)'),
  ('stride', _int_at_least(1), 'use an integer >= 1 (frame interval)'),
  ('pad_mode', lambda v, d: v in ops.PAD_MODES, f'use one of {ops.PAD_MODES}'),
  ('temporal_jitter', _int_at_least(0), 'use an integer >= 0 (0 disables the jitter)'),
  (
    'targeted_beta',
    lambda v, d: _is_number(v) and v > 0,
    "use a number > 0 (float('inf') samples windows uniformly)",
  ),
  ('motion_window_seconds', lambda v, d: _is_number(v) and v > 0, 'use a number > 0 (seconds)'),
  ('crop_size', _int_at_least(1), 'use an integer >= 1 (output side in pixels)'),
  ('resize_short_side', _optional_side, 'use None (keep the stored size) or an integer >= 1'),
  ('crop', lambda v, d: v in TRAIN_CROPS, f'use one of {TRAIN_CROPS}'),
  ('min_area', lambda v, d: _is_number(v) and 0 < v <= 1, 'use a fraction in (0, 1]'),
  ('max_area', lambda v, d: _is_number(v) and 0 < v <= 1, 'use a fraction in (0, 1]'),
  ('min_area', lambda v, d: v <= d.max_area, 'use a value <= config.data.max_area={max_area!r}'),
  ('min_aspect_ratio', lambda v, d: _is_number(v) and v > 0, 'use a number > 0 (width / height)'),
  ('max_aspect_ratio', lambda v, d: _is_number(v) and v > 0, 'use a number > 0 (width / height)'),
  (
    'min_aspect_ratio',
    lambda v, d: v <= d.max_aspect_ratio,
    'use a value <= config.data.max_aspect_ratio={max_aspect_ratio!r}',
  ),
  ('crop_max_attempts', _int_at_least(1), 'use an integer >= 1'),
  ('flip_prob', _probability, 'use a probability in [0, 1]'),
  (
    'color_jitter_strength',
    lambda v, d: _numbers(v, 4) and all(s >= 0 for s in v) and v[3] <= 0.5,
    'use 4 numbers >= 0 (brightness, contrast, saturation, hue), hue <= 0.5',
  ),
  ('color_jitter_prob', _probability, 'use a probability in [0, 1]'),
  ('color_jitter_random_order', _flag, 'use True or False'),
  ('grayscale_prob', _probability, 'use a probability in [0, 1]'),
  ('blur_prob', _probability, 'use a probability in [0, 1]'),
  (
    'blur_sigma',
    lambda v, d: _numbers(v, 2) and 0 < v[0] <= v[1],
    'use (min, max) with 0 < min <= max',
  ),
  ('blur_truncate', lambda v, d: _is_number(v) and v > 0, 'use a number > 0'),
  ('mean', lambda v, d: _numbers(v, 3), 'use 3 numbers, one per RGB channel'),
  (
    'std',
    lambda v, d: _numbers(v, 3) and all(s > 0 for s in v),
    'use 3 numbers > 0, one per RGB channel',
  ),
  ('eval_crop', lambda v, d: v in EVAL_CROPS, f'use one of {tuple(EVAL_CROPS)}'),
  (
    'eval_resize_short_side',
    _optional_side,
    'use None (then resize_short_side applies) or an integer >= 1',
  ),
  ('eval_shuffle_seed', lambda v, d: _is_int(v), 'use an integer'),
  ('frame_step', _int_at_least(1), 'use an integer >= 1'),
  ('frame_shuffle_buffer', _int_at_least(0), 'use an integer >= 0 (0 or 1: no shuffling)'),
  ('shuffle_buffer', _int_at_least(0), 'use an integer >= 0 (0 or 1: no shuffling)'),
  (
    'num_parallel_calls',
    lambda v, d: _is_int(v) and (v == -1 or v >= 1),
    'use -1 (AUTOTUNE) or an integer >= 1',
  ),
  ('prefetch', _int_at_least(0), 'use an integer >= 0'),
  ('cache', _flag, 'use True or False'),
  ('num_threads', _int_at_least(0), "use an integer >= 0 (0: TF's default thread pool)"),
  ('transfer_dtype', lambda v, d: v in TRANSFER_DTYPES, f'use one of {TRANSFER_DTYPES}'),
  ('device_augment', _flag, 'use True or False'),
  ('decode_crop', _flag, 'use True or False'),
  (
    'decode_crop',
    lambda v, d: not v or d.resize_short_side is None,
    'decode_crop needs config.data.resize_short_side=None (the crop window must be known in '
    'the stored frame before decoding); set one of them off',
  ),
  ('device_prefetch', _int_at_least(0), 'use an integer >= 0 (0: no batches ahead)'),
)


def check_data_config(data: ml_collections.ConfigDict) -> None:
  """The one check of the values of the data section (`config.data`), done when a config loads.

  Every key of `default_data_config` must be present and have a possible value, alone and
  together with the others (e.g. min_area <= max_area). The pipeline functions do not check the
  section again.

  Raises:
    ConfigError: naming the first bad key, as `config.data.<key>=<value>: <what to do>`.
  """
  missing = sorted(set(default_data_config().keys()) - set(data.keys()))
  if missing:
    raise ConfigError(
      f'config.data.{missing[0]} is missing: start from '
      'jaxvssl.inputs.data_config.default_data_config(), which has every key'
    )
  for key, is_valid, what in _DATA_CHECKS:
    value = data[key]
    try:
      valid = bool(is_valid(value, data))
    except TypeError:  # e.g. a string compared with a number
      valid = False
    if not valid:
      raise ConfigError(f'config.data.{key}={value!r}: {what.format_map(data)}')

"""Input checks (warnings only, never a change of the pipeline): every `make_*_dataset` of
`pipeline` compares the config with the first `PROBE_EXAMPLES` videos of its shard, read on the
host with a separate iterator that parses JPEG headers only (`probe`), and warns when
  * a clip window is longer than a video (its frames past the end repeat the
    last frame, `pad_mode`), naming config.data.num_frames / stride, or
  * a crop is larger than the frames' short side (every crop is upsampled, or
    zero-padded by an eval resize below the crop), naming config.data.crop_size
    and the resize keys.
Each cause is reported once per process: a `[jaxvssl] warning: ...` line on
stdout and a `warnings.warn(..., InputWarning)`. The pipeline's graph and every
tensor it yields are the same with or without the check. It only samples: a
short video after the first PROBE_EXAMPLES goes unnoticed, and a source of
unknown cardinality (a filtered split, where finding the first examples may
read the whole split) is not probed.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, NamedTuple, Sequence

import ml_collections

from jaxvssl.inputs import reading
from jaxvssl.inputs import views as views_lib
from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()  # GPUs hidden from TF (jaxvssl.tf_setup)

# Videos of a shard whose length and frame size are compared with the config.
PROBE_EXAMPLES = 16
# Causes already reported by this process (see _warn_once).
_warned: set[tuple[Any, ...]] = set()


class InputWarning(UserWarning):
  """The data serve the config only by padding clips or upsampling crops (module doc)."""


class _Probe(NamedTuple):
  """What the first videos of a shard look like.

  lengths: frames of each probed video.
  short_side: smallest short side of their (first) frames, in pixels.
  """

  lengths: list[int]
  short_side: int


def _warn_once(cause: tuple[Any, ...], message: str) -> None:
  """Reports `message` once per process and cause: on stdout and as an InputWarning."""
  if cause in _warned:
    return
  _warned.add(cause)
  print(f'[jaxvssl] warning: {message}', flush=True)
  warnings.warn(message, InputWarning, stacklevel=3)


def probe(ds: tf.data.Dataset, count: int = PROBE_EXAMPLES) -> _Probe | None:
  """Lengths and frame short side of the first `count` examples of `ds`; None if unknown.

  A separate iterator reads the records and parses one JPEG header per video
  (`tf.io.extract_jpeg_shape`, no decoding): the pipeline built on `ds` is
  untouched. Sources of unknown cardinality and unreadable frames are skipped.
  """
  spec = ds.element_spec
  if not isinstance(spec, Mapping) or 'video' not in spec:
    return None
  if int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY:
    return None

  def fn(example):
    video = example['video']
    n = tf.shape(video)[0]
    height_width = tf.cond(
      n > 0,
      lambda: tf.io.extract_jpeg_shape(video[0])[:2],
      lambda: tf.zeros([2], tf.int32),
    )
    return n, tf.reduce_min(height_width)

  try:
    rows = [(int(n), int(side)) for n, side in ds.take(count).map(reading.graph_fn(fn))]
  except (tf.errors.OpError, ValueError, TypeError):
    return None  # e.g. frames that are not JPEG: the check is advisory
  rows = [(n, side) for n, side in rows if n > 0]
  if not rows:
    return None
  return _Probe([n for n, _ in rows], min(side for _, side in rows))


def data_name(data_cfg: ml_collections.ConfigDict, split: str | None, source) -> str:
  if source is not None:
    return 'the source data set'
  return f'{data_cfg.name}[{split}]'


def _pad_effect(pad_mode: str) -> str:
  if pad_mode == 'loop':
    return "replay the video from its first frame (config.data.pad_mode='loop')"
  return "repeat the video's last frame (config.data.pad_mode='clamp')"


def _frames_past_end(length: int, num_frames: int, stride: int, offset: int = 0) -> int:
  """Frames of a clip at window start 0 (the only start then) beyond a `length`-frame video."""
  return sum(offset + i * stride >= length for i in range(num_frames))


def check_clip_length(
  stage: str,
  probe: _Probe,
  span: int,
  views: Sequence[tuple[str, int, int, int]],
  data_cfg: ml_collections.ConfigDict,
  name: str,
) -> None:
  """Warns when a `span`-frame window is longer than a probed video.

  Args:
    views: (name, num_frames, stride, offset) of the clips read from the window.
  """
  shortest = min(probe.lengths)
  if span <= shortest:
    return
  num_short = sum(n < span for n in probe.lengths)
  view, num_frames, stride, offset = max(views, key=lambda v: _frames_past_end(shortest, *v[1:]))
  past = _frames_past_end(shortest, num_frames, stride, offset)
  shapes = '; '.join(
    f'{v[0]!r} num_frames={v[1]}, stride={v[2]}' + (f', offset={v[3]}' if v[3] else '')
    for v in views
  )
  _warn_once(
    ('clip', stage, span),
    f'{stage} clips are longer than the videos: {shapes} need a window of {span} frames, '
    f'and {num_short} of the first {len(probe.lengths)} videos of {name} are shorter '
    f'(shortest: {shortest} frames), so in the shortest {past} of the {num_frames} frames of '
    f'{view!r} {_pad_effect(data_cfg.pad_mode)}. To fix: lower num_frames or stride '
    f'(config.data.num_frames={data_cfg.num_frames}, config.data.stride={data_cfg.stride}; '
    'methods and evaluations copy them) so that (num_frames - 1) * stride + 1 <= '
    f'{shortest}, or rebuild the data set (jaxvssl prepare: --fps 0 keeps every frame, '
    f'--min_frames {span} drops the shorter videos).',
  )


def check_crop(
  stage: str,
  probe: _Probe,
  crops: Mapping[str, int],
  resize: int | None,
  resize_key: str,
  name: str,
  effect: str = 'upsampled',
) -> None:
  """Warns when a crop is larger than the frames' short side (after an optional resize).

  Args:
    crops: what sets each crop size (e.g. 'config.data.crop_size') -> pixels.
    resize: the short side frames are resized to first (None: the stored size).
  """
  frame = resize or probe.short_side
  large = {key: size for key, size in crops.items() if size > frame}
  if not large:
    return
  crop = max(large.values())
  sizes = ', '.join(f'{key}={size}' for key, size in large.items())
  if resize:
    found = f'{resize_key}={resize} resizes the frames to a short side of {resize} pixels'
    fix = f'set {resize_key} to {crop} or more'
  else:
    found = (
      f'the frames of {name} have a short side of {probe.short_side} pixels (smallest of '
      f'the first {len(probe.lengths)} videos; {resize_key}=None keeps it)'
    )
    fix = f'rebuild the data set with larger frames (e.g. jaxvssl prepare --short_side {crop})'
  if effect == 'upsampled':
    effect = f'{crop / frame:.2f}x upsampled (even a crop of the whole frame)'
  _warn_once(
    ('crop', stage, crop, frame),
    f'{stage} crops are larger than the frames: {sizes} pixels, while {found}, so every '
    f'{stage} crop is {effect}. To fix: lower {" and ".join(large)} to {frame} or less, '
    f'or {fix}.',
  )


def check_train_fit(
  data_cfg: ml_collections.ConfigDict, plan: views_lib.ViewPlan, probe: _Probe | None, name: str
) -> None:
  if probe is None:
    return
  for group in plan.temporal_groups:
    check_clip_length(
      'training',
      probe,
      group.span,
      [(v.name, v.num_frames, v.stride, v.offset) for v in group.views],
      data_cfg,
      name,
    )
  crops = {'config.data.crop_size': data_cfg.crop_size}
  for v in plan.views:
    if v.crop_size:
      crops[f'ViewSpec {v.name!r} crop_size'] = v.crop_size
  check_crop(
    'training', probe, crops, data_cfg.resize_short_side, 'config.data.resize_short_side', name
  )

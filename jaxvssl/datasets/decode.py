"""Decode one video file into the stored form of a jaxvssl video example.

This module is the per-video work of every real-video builder: it runs in the
worker processes of a local build and inside the Beam ``DoFn`` of a distributed
build, so it imports neither TensorFlow nor TFDS (a worker starts in well under a
second and never touches an accelerator).

A video becomes:

* frames decoded with PyAV (FFmpeg libraries, no ``ffmpeg`` binary), converted
  to RGB and resized so that the SHORT side is ``short_side`` pixels (aspect
  kept, both sides even; see ``output_size``), optionally subsampled to
  ``target_fps``;
* each frame JPEG-encoded (OpenCV, configurable quality), ready for
  ``tfds.features.Video(encoding_format='jpeg')``, which stores encoded bytes
  as they are;
* the frame rate of the STORED frames and one motion score per 1-second window
  (``jaxvssl.datasets.motion.window_motion_scores`` on the resized frames, SCVRL
  targeted sampling).

Anything wrong with a file raises ``BadVideoError`` with a short machine-readable
``reason`` (see ``REASONS``); builders turn it into a line of the bad-video
report instead of aborting the build.
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import io
import math
import os
from collections.abc import Iterator
from typing import Any

import av
import cv2
import numpy as np

from jaxvssl.datasets import motion

# Machine-readable reasons of the bad-video report, with what they mean.
REASONS = {
  'missing': 'the file listed by the annotations does not exist',
  'duplicate': 'listed again in this split (its first listing is written), or a file whose id '
  'another video of the split already has',
  'empty_file': 'the file has zero bytes',
  'unreadable': 'the container cannot be opened or has no video stream',
  'decode_error': 'decoding failed part-way (corrupt packets)',
  'truncated': 'fewer frames decoded than the container header announces',
  'zero_frames': 'the video stream holds no decodable frame',
  'too_short': 'fewer frames than min_frames after fps subsampling',
  'unknown_fps': 'the frame rate can be read neither from the stream nor from its duration',
}


class BadVideoError(Exception):
  """A video that cannot become an example; ``reason`` is a key of REASONS."""

  def __init__(self, reason: str, detail: str):
    if reason not in REASONS:
      raise ValueError(
        f'BadVideoError: unknown reason {reason!r}; expected one of {sorted(REASONS)}'
      )
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
  """How source videos become stored frames (recorded in the data set metadata).

  Attributes:
    short_side: length in pixels of the shorter side of every stored frame
      (must be even and > 0); the longer side keeps the display aspect ratio,
      rounded to the nearest even number.
    target_fps: keep about this many frames per second (deterministic, by
      frame index) when the source is faster; None or 0 keeps every frame.
    jpeg_quality: OpenCV JPEG quality of the stored frames, 1..100.
    min_frames: videos with fewer stored frames are reported as 'too_short'.
    truncation_tolerance: a video is 'truncated' when it decodes fewer than
      (1 - truncation_tolerance) x the frame count of the container header
      (and at least 2 frames are missing); header counts are approximate for
      some codecs, hence the slack.
    motion_window_seconds: window length of the stored motion scores.
    motion_top_k: top-k of the per-frame motion score. None (default) keeps
      SCVRL's fraction of the pixels, 4000 of 128x171
      (``motion.scaled_top_k`` of each video's stored frame size), so scores
      compare across frame sizes and aspect ratios.
  """

  short_side: int = 128
  target_fps: float | None = None
  jpeg_quality: int = 90
  min_frames: int = 16
  truncation_tolerance: float = 0.05
  motion_window_seconds: float = 1.0
  motion_top_k: int | None = None

  def __post_init__(self):
    if self.short_side <= 0 or self.short_side % 2:
      raise ValueError(
        f'DecodeOptions.short_side must be a positive even number, got {self.short_side}'
      )
    if self.target_fps is not None and self.target_fps < 0:
      raise ValueError(f'DecodeOptions.target_fps must be None, 0 or > 0, got {self.target_fps}')
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f'DecodeOptions.jpeg_quality must be in [1, 100], got {self.jpeg_quality}')
    if self.min_frames < 1:
      raise ValueError(f'DecodeOptions.min_frames must be >= 1, got {self.min_frames}')
    if not 0 <= self.truncation_tolerance < 1:
      raise ValueError(
        f'DecodeOptions.truncation_tolerance must be in [0, 1), got {self.truncation_tolerance}'
      )
    if self.motion_window_seconds <= 0:
      raise ValueError(
        f'DecodeOptions.motion_window_seconds must be > 0, got {self.motion_window_seconds}'
      )
    if self.motion_top_k is not None and self.motion_top_k < 1:
      raise ValueError(f'DecodeOptions.motion_top_k must be >= 1, got {self.motion_top_k}')

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VideoTask:
  """One video to turn into an example (picklable, JSON-able for Beam).

  Attributes:
    path: path of the source file (local or any ``tf.io.gfile`` URL).
    video_id: unique id of the example (also its TFDS key).
    label: 0-based class index.
  """

  path: str
  video_id: str
  label: int

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: dict[str, Any]) -> 'VideoTask':
    return cls(path=str(value['path']), video_id=str(value['video_id']), label=int(value['label']))


@dataclasses.dataclass(frozen=True)
class BadVideo:
  """One line of the bad-video report."""

  path: str
  video_id: str
  reason: str
  detail: str

  def to_json(self) -> dict[str, str]:
    return dataclasses.asdict(self)


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
  """(width, height) with the short side ``short_side``, aspect kept, even sides.

  The long side is ``2 * round(long * short_side / short / 2)`` (nearest even
  number, at least 2): e.g. 64x48 -> short side 32 -> 42x32 (42.67 rounds to
  42), 320x240 -> 128 gives 170x128, 340x256 -> 128 gives 170x128. Even sizes
  keep chroma-subsampled re-encoding and 2x pooling exact.
  """
  if width <= 0 or height <= 0:
    raise ValueError(f'output_size: invalid source size {width}x{height}')
  short, long = min(width, height), max(width, height)
  new_long = max(2, 2 * int(round(long * short_side / short / 2)))
  if width >= height:
    return new_long, short_side
  return short_side, new_long


def _keep_ratio(source_fps: float, target_fps: float | None) -> float:
  """Fraction of the source frames kept (1 = all; never upsamples)."""
  if not target_fps or target_fps >= source_fps:
    return 1.0
  return target_fps / source_fps


def _output_slot(index: int | np.ndarray, ratio: float) -> int | np.ndarray:
  # The epsilon keeps exact ratios (e.g. 30 -> 15 fps) from flooring 0.999...
  return np.floor(np.asarray(index) * ratio + 1e-9).astype(np.int64)


def subsample_indices(num_frames: int, source_fps: float, target_fps: float | None) -> np.ndarray:
  """Indices of the frames kept when resampling ``source_fps`` to ``target_fps``.

  Frame i is kept when it is the first frame of output slot
  ``floor(i * target / source)``, so the kept frames are as evenly spaced as
  the source allows and ``floor((T - 1) * target / source) + 1`` remain. Never upsamples:
  a target at or above the source rate keeps every frame. ``decode_frames``
  applies the same rule while decoding.

  Returns:
    int64 [num_kept] increasing indices in [0, num_frames).
  """
  slots = _output_slot(np.arange(num_frames), _keep_ratio(source_fps, target_fps))
  first_of_slot = np.concatenate([[True], slots[1:] != slots[:-1]])[:num_frames]
  return np.arange(num_frames)[first_of_slot]


def _as_float(rate: fractions.Fraction | float | None) -> float:
  if rate is None:
    return 0.0
  value = float(rate)
  return value if math.isfinite(value) and value > 0 else 0.0


def _open_container(path: str) -> av.container.InputContainer:
  """Opens a local file directly, and anything else (gs://, ...) via tf.io.gfile."""
  if '://' not in path:
    return av.open(path, mode='r')
  # Remote sources only happen in distributed (Beam) builds; the workers have
  # TensorFlow for the writer anyway. Imported here so local workers stay light.
  from etils import epath  # pylint: disable=g-import-not-at-top

  return av.open(io.BytesIO(epath.Path(path).read_bytes()), mode='r')


def _check_exists(path: str) -> None:
  if '://' in path:
    from etils import epath  # pylint: disable=g-import-not-at-top

    if not epath.Path(path).exists():
      raise BadVideoError('missing', f'no such file: {path}')
    return
  if not os.path.exists(path):
    raise BadVideoError('missing', f'no such file: {path}')
  if os.path.getsize(path) == 0:
    raise BadVideoError('empty_file', f'zero bytes: {path}')


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
  for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
    fps = _as_float(rate)
    if fps:
      return fps
  if stream.duration and stream.time_base and stream.frames:
    seconds = float(stream.duration * stream.time_base)
    if seconds > 0:
      return stream.frames / seconds
  return 0.0


def _display_size(stream: av.video.stream.VideoStream, width: int, height: int) -> tuple[int, int]:
  """Frame size as displayed: non-square pixels (SAR != 1) stretch the width."""
  sar = _as_float(getattr(stream, 'sample_aspect_ratio', None))
  if sar and abs(sar - 1.0) > 1e-3:
    return max(1, int(round(width * sar))), height
  return width, height


def decode_frames(path: str, options: DecodeOptions) -> tuple[np.ndarray, float]:
  """Decodes, resizes and fps-subsamples a video.

  Args:
    path: local path or gfile URL of the video.
    options: decoding options.

  Returns:
    (frames uint8 [T, H, W, 3] RGB with min(H, W) == options.short_side,
     fps of the returned frames).

  Raises:
    BadVideoError: see REASONS.
  """
  _check_exists(path)
  try:
    container = _open_container(path)
  except (av.FFmpegError, OSError, ValueError) as e:
    raise BadVideoError('unreadable', f'{path}: {e}') from e
  with container:
    if not container.streams.video:
      raise BadVideoError('unreadable', f'{path}: no video stream')
    stream = container.streams.video[0]
    source_fps = _stream_fps(stream)
    if not source_fps:
      raise BadVideoError('unknown_fps', path)
    expected = int(stream.frames or 0)
    ratio = _keep_ratio(source_fps, options.target_fps)
    frames: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    num_decoded = 0
    next_slot = 0
    try:
      for frame in container.decode(stream):
        # Frame selection by index (see subsample_indices), done while decoding
        # so that dropped frames are never converted or kept in memory.
        slot = int(_output_slot(num_decoded, ratio))
        num_decoded += 1
        if slot < next_slot:
          continue
        next_slot = slot + 1
        if size is None:
          size = output_size(*_display_size(stream, frame.width, frame.height), options.short_side)
        # One swscale pass converts to RGB and resizes (area filter: no
        # aliasing when shrinking, the common case).
        frames.append(
          frame.to_ndarray(format='rgb24', width=size[0], height=size[1], interpolation='AREA')
        )
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
      raise BadVideoError('decode_error', f'{path}: after {num_decoded} frames: {e}') from e
  if not frames:
    raise BadVideoError('zero_frames', path)
  missing = expected - num_decoded
  if expected and missing > max(2, options.truncation_tolerance * expected):
    raise BadVideoError(
      'truncated', f'{path}: decoded {num_decoded} of {expected} frames in the header'
    )
  fps = source_fps * ratio
  if len(frames) < options.min_frames:
    raise BadVideoError(
      'too_short',
      f'{path}: {len(frames)} frames < min_frames '
      f'{options.min_frames} (source {num_decoded} frames at '
      f'{source_fps:.3f} fps)',
    )
  return np.stack(frames), fps


def encode_jpeg_frames(frames: np.ndarray, quality: int) -> list[bytes]:
  """JPEG-encodes uint8 RGB frames [T, H, W, 3] -> T byte strings (OpenCV; deterministic).

  The one encoder of stored frames: real videos (`make_example`) and synthetic_motion
  (`synthetic.encoded_example`) both use it.
  """
  params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
  encoded = []
  for frame in frames:
    # OpenCV writes BGR; the stored JPEGs must decode to RGB.
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(frame[..., ::-1]), params)
    if not ok:
      raise RuntimeError(f'cv2.imencode failed on a frame of shape {frame.shape}')
    encoded.append(buf.tobytes())
  return encoded


def make_example(task: VideoTask, options: DecodeOptions) -> dict[str, Any]:
  """The TFDS example of one video (raises BadVideoError).

  Returns:
    {'video': list of T JPEG byte strings, 'label': int, 'video_id': str,
     'num_frames': int, 'fps': float, 'motion_scores': float32 [num_windows]}
  """
  frames, fps = decode_frames(task.path, options)
  top_k = options.motion_top_k
  if top_k is None:
    top_k = motion.scaled_top_k(frames.shape[1], frames.shape[2])
  scores = motion.window_motion_scores(
    frames, fps, window_seconds=options.motion_window_seconds, top_k=top_k
  )
  return {
    'video': encode_jpeg_frames(frames, options.jpeg_quality),
    'label': int(task.label),
    'video_id': task.video_id,
    'num_frames': int(frames.shape[0]),
    'fps': float(fps),
    'motion_scores': np.asarray(scores, np.float32),
  }


def process(task: VideoTask, options: DecodeOptions) -> tuple[VideoTask, dict[str, Any] | BadVideo]:
  """``make_example`` that returns a BadVideo instead of raising on bad input.

  Errors other than BadVideoError (bugs, out of memory) still raise: they must
  stop the build rather than silently empty the data set.
  """
  try:
    return task, make_example(task, options)
  except BadVideoError as e:
    return task, BadVideo(path=task.path, video_id=task.video_id, reason=e.reason, detail=e.detail)


def init_worker() -> None:
  """Process-pool initializer: one OpenCV thread per worker process.

  The pool already runs one worker per core; OpenCV's own thread pool on top
  would oversubscribe the cores.
  """
  cv2.setNumThreads(1)


def default_num_workers() -> int:
  """Cores this process may use (respects CPU affinity / container limits)."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # Not on Linux.
    return max(1, os.cpu_count() or 1)


class VideoProcessor:
  """Turns VideoTasks into examples on a pool of processes, in task order.

  Usage::

    with VideoProcessor(options, num_workers=8) as processor:
      for task, result in processor.imap(tasks):
        ...  # result: example dict, or BadVideo

  ``num_workers <= 1`` works in this process (debugging, tiny data sets).
  Workers are spawned, not forked: the building process runs TensorFlow's
  thread pools, which do not survive a fork. A spawned worker imports this
  module and the ``__main__`` module of the parent, so scripts that start a
  build must guard their entry point with ``if __name__ == '__main__'``.
  """

  def __init__(self, options: DecodeOptions, num_workers: int | None = None):
    self.options = options
    self.num_workers = default_num_workers() if num_workers is None else int(num_workers)
    self._pool = None

  def __enter__(self) -> 'VideoProcessor':
    from jaxvssl.datasets import workers  # pylint: disable=g-import-not-at-top

    self._pool = workers.spawn_pool(self.num_workers, initializer=init_worker)
    return self

  def __exit__(self, exc_type, exc, traceback) -> None:
    if self._pool is not None:
      if exc_type is None:
        self._pool.close()
      else:
        self._pool.terminate()
      self._pool.join()
      self._pool = None

  def imap(self, tasks: list[VideoTask]) -> Iterator[tuple[VideoTask, dict[str, Any] | BadVideo]]:
    """Yields ``(task, example or BadVideo)`` for every task, in order."""
    if self._pool is None:
      for task in tasks:
        yield process(task, self.options)
      return
    # imap keeps the task order (deterministic output); chunksize 1 because a
    # single long video must not hold back a whole chunk of short ones.
    yield from self._pool.imap(functools.partial(process, options=self.options), tasks, chunksize=1)

"""TFDS builder of ``synthetic_motion``, the embedded default data set.

Videos come from ``jaxvssl.datasets.synthetic`` (class = motion law, appearance
independent of the class; see that module for the class table). The data set
goes through the same TFDS path as a real one: frames stored as JPEG, one
``motion_scores`` value per 1-second window (``jaxvssl.datasets.motion``).

Usage::

    from jaxvssl.datasets.builders import synthetic_motion
    builder = synthetic_motion.build_synthetic_motion('/tmp/tfds')   # builds once
    # or, after the import has registered the builder:
    builder = tfds.builder('synthetic_motion/default', data_dir='/tmp/tfds')
    ds = builder.as_dataset('train',
                            decoders={'video': tfds.decode.SkipDecoding()})

Configs: 'default' (48 frames, 64x64, 16 fps, 16 x 50 train / 16 x 15 test)
and 'tiny' (16 frames, 32x32, 16 x 4 train / 16 x 2 test) for tests. Any
other combination: ``build_synthetic_motion(data_dir, 'default',
num_frames=32, ...)`` builds a config named after its overrides.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from jaxvssl.datasets import motion as motion_lib
from jaxvssl.datasets import synthetic
from jaxvssl.datasets import workers as workers_lib
from jaxvssl.tf_setup import import_tensorflow

import_tensorflow()  # hide GPUs before TFDS initialises TensorFlow
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,g-bad-import-order

Resolution = Union[int, Tuple[int, int]]


@dataclasses.dataclass(eq=False)
class SyntheticMotionConfig(tfds.core.BuilderConfig):
  """What is stored on disk.

  Attributes:
    num_frames: frames per video.
    resolution: (height, width) in pixels, or one int for square frames.
    fps: nominal frame rate (stored per example; sets the motion windows).
    num_train: number of train videos (classes are assigned round robin, so
      a multiple of 16 gives exact balance).
    num_test: number of test videos.
    seed: data set seed; a video is a pure function of (seed, split, index).
    motion_top_k: top-k of the motion score; None scales SCVRL's 4000 (for
      128x171 frames) to the frame size (``motion.scaled_top_k``).
    jpeg_quality: JPEG quality of the stored frames (0-100).
  """

  num_frames: int = 48
  resolution: Resolution = (64, 64)
  fps: float = 16.0
  num_train: int = 16 * 50
  num_test: int = 16 * 15
  seed: int = 0
  motion_top_k: Optional[int] = None
  jpeg_quality: int = 95

  def __post_init__(self):
    height, width = self.height_width
    checks = {
      'num_frames': self.num_frames >= 2,
      'resolution': min(height, width) >= 8,
      'fps': self.fps > 0,
      'num_train': self.num_train >= 0,
      'num_test': self.num_test >= 0,
      'motion_top_k': self.motion_top_k is None or self.motion_top_k >= 1,
      'jpeg_quality': 0 <= self.jpeg_quality <= 100,
    }
    for key, ok in checks.items():
      if not ok:
        raise ValueError(
          f'synthetic_motion config {self.name!r}: invalid {key}={getattr(self, key)!r}'
        )

  @property
  def height_width(self) -> Tuple[int, int]:
    if isinstance(self.resolution, int):
      return self.resolution, self.resolution
    height, width = self.resolution
    return int(height), int(width)

  def synthetic_config(self) -> synthetic.SyntheticConfig:
    height, width = self.height_width
    return synthetic.SyntheticConfig(
      num_frames=self.num_frames, height=height, width=width, fps=self.fps, seed=self.seed
    )

  def resolved_top_k(self) -> int:
    if self.motion_top_k is not None:
      return int(self.motion_top_k)
    return motion_lib.scaled_top_k(*self.height_width)


_DATA_FIELDS = (
  'num_frames',
  'resolution',
  'fps',
  'num_train',
  'num_test',
  'seed',
  'motion_top_k',
  'jpeg_quality',
)

BUILDER_CONFIGS = (
  SyntheticMotionConfig(
    name='default',
    description='48 frames, 64x64, 16 fps; 16 classes x 50 train / x 15 test.',
    num_frames=48,
    resolution=(64, 64),
    fps=16.0,
    num_train=16 * 50,
    num_test=16 * 15,
    seed=0,
  ),
  SyntheticMotionConfig(
    name='tiny',
    description='For tests: 16 frames, 32x32, 16 fps; 16 classes x 4 train / x 2 test.',
    num_frames=16,
    resolution=(32, 32),
    fps=16.0,
    num_train=16 * 4,
    num_test=16 * 2,
    seed=0,
  ),
)


def _to_record(ex: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
  """(key, features) from ``synthetic.encoded_example`` output."""
  return ex['video_id'], {
    'video': ex['video'],  # list of JPEG byte strings: stored as they are
    'label': ex['label'],
    'video_id': ex['video_id'],
    'num_frames': np.int32(ex['num_frames']),
    'fps': np.float32(ex['fps']),
    'motion_scores': np.asarray(ex['motion_scores'], np.float32),
  }


class SyntheticMotion(tfds.core.GeneratorBasedBuilder):
  """Procedural videos whose class is defined by motion only."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: 16 motion classes.'}
  BUILDER_CONFIGS = list(BUILDER_CONFIGS)
  DEFAULT_BUILDER_CONFIG_NAME = 'default'

  def __init__(self, *, num_workers: Optional[int] = None, **kwargs: Any):
    """See ``tfds.core.GeneratorBasedBuilder``.

    Args:
      num_workers: processes rendering in parallel while building (0 or 1 =
        in the building process; None = ``min(2, os.cpu_count())``). It only
        changes the build speed, never the data.
      **kwargs: data_dir, config, version, file_format.
    """
    super().__init__(**kwargs)
    self._num_workers = num_workers

  def _info(self) -> tfds.core.DatasetInfo:
    cfg: SyntheticMotionConfig = self.builder_config
    height, width = cfg.height_width
    classes = [
      {
        'name': c.name,
        'partner': c.partner,
        'reverse_of_law': c.reverse,
        'description': c.description,
      }
      for c in synthetic.CLASSES
    ]
    return self.dataset_info_from_configs(
      description=(
        'Procedural videos: the class is HOW objects move (direction, '
        'rotation sense, growth, path, time direction); shape, colours, '
        'texture, background and object count are independent of the '
        'class. 14 of the 16 classes form 7 pairs that are exact time '
        'reversals of each other.'
      ),
      features=tfds.features.FeaturesDict(
        {
          'video': tfds.features.Video(shape=(None, height, width, 3), encoding_format='jpeg'),
          'label': tfds.features.ClassLabel(names=list(synthetic.CLASS_NAMES)),
          'video_id': tfds.features.Text(),
          'num_frames': tfds.features.Scalar(dtype=np.int32),
          'fps': tfds.features.Scalar(dtype=np.float32),
          'motion_scores': tfds.features.Tensor(shape=(None,), dtype=np.float32),
        }
      ),
      supervised_keys=('video', 'label'),
      metadata=tfds.core.MetadataDict(
        num_frames=cfg.num_frames,
        height=height,
        width=width,
        fps=float(cfg.fps),
        seed=cfg.seed,
        motion_top_k=cfg.resolved_top_k(),
        motion_window_seconds=1.0,
        jpeg_quality=cfg.jpeg_quality,
        classes=classes,
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    cfg: SyntheticMotionConfig = self.builder_config
    return {
      'train': self._generate_examples('train', cfg.num_train),
      'test': self._generate_examples('test', cfg.num_test),
    }

  def _generate_examples(self, split: str, count: int) -> Iterator[Tuple[str, Dict[str, Any]]]:
    cfg: SyntheticMotionConfig = self.builder_config
    jobs = [
      (cfg.synthetic_config(), split, i, cfg.resolved_top_k(), cfg.jpeg_quality)
      for i in range(count)
    ]
    workers = self._num_workers
    if workers is None:
      workers = min(2, os.cpu_count() or 1)
    workers = min(workers, max(1, count // 8))  # small splits: not worth a pool
    # The workers import only jaxvssl.datasets.synthetic (NumPy + OpenCV).
    pool = workers_lib.spawn_pool(workers, initializer=synthetic.single_threaded_worker)
    if pool is None:
      for job in jobs:
        yield _to_record(synthetic.encoded_example(*job))
      return
    with pool:
      for ex in pool.imap(synthetic.encoded_example_star, jobs, chunksize=8):
        yield _to_record(ex)


def _config_name(base: str, overrides: Dict[str, Any]) -> str:
  parts = [base]
  for key in sorted(overrides):
    value = overrides[key]
    if isinstance(value, (tuple, list)):
      value = 'x'.join(str(v) for v in value)
    parts.append(f'{key}{value}'.replace('.', 'p').replace('-', 'm'))
  return '_'.join(parts)


def make_config(config_name: str = 'default', **overrides: Any) -> SyntheticMotionConfig:
  """A named config, or a custom one derived from it by ``overrides``.

  A custom config is named after its overrides (e.g.
  ``default_num_frames32_resolution32x32``) so that different settings never
  share a directory.
  """
  base = SyntheticMotion.builder_configs.get(config_name)
  if base is None:
    raise ValueError(
      f'synthetic_motion: unknown config {config_name!r}; known: '
      f'{sorted(SyntheticMotion.builder_configs)}'
    )
  unknown = sorted(set(overrides) - set(_DATA_FIELDS))
  if unknown:
    raise ValueError(
      f'synthetic_motion: unknown config overrides {unknown}; allowed: {list(_DATA_FIELDS)}'
    )
  changed = {k: v for k, v in overrides.items() if v != getattr(base, k)}
  if not changed:
    return base
  name = _config_name(config_name, changed)
  return dataclasses.replace(
    base, name=name, description=f'{config_name} with {changed}', **changed
  )


def build_synthetic_motion(
  data_dir: Union[str, os.PathLike],
  config_name: str = 'default',
  num_workers: Optional[int] = None,
  **overrides: Any,
) -> tfds.core.DatasetBuilder:
  """Builds ``synthetic_motion`` into ``data_dir`` if needed; returns the builder.

  Args:
    data_dir: TFDS data directory.
    config_name: 'default' or 'tiny'.
    num_workers: rendering processes (see ``SyntheticMotion``).
    **overrides: SyntheticMotionConfig fields (num_frames, resolution, fps,
      num_train, num_test, seed, motion_top_k, jpeg_quality).

  Returns:
    The prepared builder; ``builder.builder_config.name`` is the config name
    to pass to ``tfds.builder('synthetic_motion/<name>', data_dir=...)``.
  """
  config = make_config(config_name, **overrides)
  builder = SyntheticMotion(data_dir=os.fspath(data_dir), config=config, num_workers=num_workers)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder

"""Writes videos as ordinary files, in the UCF101 and HMDB51 directory layouts.

Real video sets cannot be downloaded here, so the real-data builders are tested
on ``synthetic_motion`` videos written exactly as the real sets are laid out:

UCF101 (``export_ucf101``)::

    <root>/UCF-101/<ClassName>/v_<ClassName>_g<GG>_c<CC>.avi
    <root>/ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup"  (1-based, alphabetical)
    <root>/ucfTrainTestlist/trainlist0<k>.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    <root>/ucfTrainTestlist/testlist0<k>.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

  Class names are CamelCase (``move_left`` -> ``MoveLeft``). Videos of a class
  are numbered in groups of ``clips_per_group`` (g = group, c = clip, both
  1-based); test videos take the first groups and train videos the following
  ones, so, as in UCF101, no group is split between train and test. The
  split files use CRLF line endings by default, like the official ones
  (``newline``).

HMDB51 (``export_hmdb51``)::

    <root>/videos/<class>/<name>.avi
    <root>/splits/<class>_test_split<k>.txt     "<name>.avi 1 "  (1 train, 2 test, 0 unused)

  Like the official files, each split line ends with a space.

Both take examples as produced by ``jaxvssl.datasets.synthetic.generate_example``
(any dict with 'video' uint8 [T, H, W, 3], 'label_name', 'fps', and
'video_id' for HMDB names), so tests can write a handful of tiny videos. Both
can add broken entries for robustness tests (listed in the train split like
any other video): ``'corrupt'`` (random bytes), ``'empty'`` (zero bytes) and
``'short'`` (a valid video of ``short_frames`` frames).

Codecs: ``.avi`` uses MPEG-4 part 2 (``mpeg4``, what UCF101's XviD files
are); ``.mp4`` uses H.264 (``libx264``) when the installed PyAV has it, else
``mpeg4``. Frame sizes must be even (yuv420p).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import fractions
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import av
import numpy as np

Example = Mapping[str, Any]
BROKEN_KINDS = ('corrupt', 'empty', 'short')
SPLIT_IDS_HMDB = {'unused': 0, 'train': 1, 'test': 2}


# --------------------------------------------------------------------------
# Single files.


def default_codec(path: str) -> str:
  """Encoder for ``path``'s container (see the module docstring)."""
  ext = os.path.splitext(path)[1].lower()
  if ext == '.mp4' and 'libx264' in av.codecs_available:
    return 'libx264'
  if ext in ('.mp4', '.avi', '.mkv', '.mov'):
    return 'mpeg4'
  raise ValueError(f'export: no default codec for {path!r} (use .avi, .mp4, .mkv or .mov)')


def write_video(
  path: str, frames: np.ndarray, fps: float, codec: Optional[str] = None, bit_rate: int = 4_000_000
) -> str:
  """Encodes ``frames`` into a video file.

  Args:
    path: output file; the container is chosen by its extension.
    frames: uint8 [T, H, W, 3] RGB, T >= 1, H and W even.
    fps: frame rate written into the stream.
    codec: encoder name; None picks ``default_codec(path)``.
    bit_rate: target bit rate in bits/s (MPEG-4's default is far too low for
      sharp synthetic edges).

  Returns:
    ``path``.
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(
      f'export: {path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}'
    )
  num_frames, height, width, _ = frames.shape
  if num_frames < 1:
    raise ValueError(f'export: {path}: no frames to write')
  if height % 2 or width % 2:
    raise ValueError(
      f'export: {path}: height and width must be even for yuv420p, got {height}x{width}'
    )
  codec = codec or default_codec(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  rate = fractions.Fraction(fps).limit_denominator(1001)
  with av.open(path, mode='w') as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = 'yuv420p'
    stream.bit_rate = int(bit_rate)
    stream.thread_count = 1  # deterministic output
    for frame in frames:
      video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')
      for packet in stream.encode(video_frame):
        container.mux(packet)
    for packet in stream.encode():  # flush the encoder
      container.mux(packet)
  return path


def read_video(path: str) -> Tuple[np.ndarray, float]:
  """Decodes a whole video file: (uint8 [T, H, W, 3] RGB, fps)."""
  with av.open(path) as container:
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0.0)
    frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
  if not frames:
    raise ValueError(f'export: {path}: no decodable frame')
  return np.stack(frames), fps


def write_corrupt_file(path: str, num_bytes: int = 4096, seed: int = 0) -> str:
  """Writes ``num_bytes`` random bytes (not a decodable video) to ``path``."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  data = np.random.default_rng(seed).integers(0, 256, size=num_bytes, dtype=np.uint8)
  with open(path, 'wb') as f:
    f.write(data.tobytes())
  return path


def write_empty_file(path: str) -> str:
  """Writes a zero-length file at ``path``."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  open(path, 'wb').close()
  return path


def write_broken(kind: str, path: str, like: Example, short_frames: int = 2, seed: int = 0) -> str:
  """Writes one broken entry of ``kind`` ('corrupt', 'empty', 'short')."""
  if kind == 'corrupt':
    return write_corrupt_file(path, seed=seed)
  if kind == 'empty':
    return write_empty_file(path)
  if kind == 'short':
    return write_video(path, np.asarray(like['video'])[:short_frames], float(like['fps']))
  raise ValueError(f'export: unknown broken kind {kind!r}; known: {BROKEN_KINDS}')


# --------------------------------------------------------------------------
# Layouts.


@dataclasses.dataclass
class ExportResult:
  """What an export wrote.

  Attributes:
    root: the layout root.
    class_names: class names as written (layout spelling), in index order.
    videos: (relative path, split) of every regular video.
    broken: kind -> relative path of the broken entries.
    split_files: paths of the split/index files written.
  """

  root: str
  class_names: List[str]
  videos: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  broken: Dict[str, str] = dataclasses.field(default_factory=dict)
  split_files: List[str] = dataclasses.field(default_factory=list)


def ucf_class_name(name: str) -> str:
  """``move_left`` -> ``MoveLeft``; a name without '_' is kept as it is."""
  if '_' not in name:
    return name
  return ''.join(part[:1].upper() + part[1:] for part in name.split('_') if part)


def _check_split(split: str, allowed: Sequence[str], where: str) -> None:
  if split not in allowed:
    raise ValueError(f'export: {where}: split {split!r} not in {tuple(allowed)}')


def _write_lines(path: str, lines: Iterable[str], newline: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:  # newline='' keeps CRLF as written
    f.write(''.join(line + newline for line in lines))
  return path


def export_ucf101(
  root: str,
  examples: Iterable[Tuple[str, Example]],
  split_number: int = 1,
  clips_per_group: int = 4,
  extension: str = '.avi',
  broken: Sequence[str] = (),
  short_frames: int = 2,
  newline: str = '\r\n',
) -> ExportResult:
  """Writes videos in the UCF101 layout (see the module docstring).

  Args:
    root: output directory (``UCF-101/`` and ``ucfTrainTestlist/`` go inside).
    examples: (split, example) pairs, split 'train' or 'test'.
    split_number: k of ``trainlist0k.txt`` / ``testlist0k.txt`` (1-3).
    clips_per_group: videos per group (UCF101 has 4-7).
    extension: '.avi' (official) or '.mp4'.
    broken: kinds of broken train entries to add to the first class.
    short_frames: frames of the 'short' broken video.
    newline: line ending of the split files.

  Returns:
    ExportResult (paths relative to ``root/UCF-101``).
  """
  if not 1 <= split_number <= 9:
    raise ValueError(f'export: split_number must be in 1..9, got {split_number}')
  by_class: Dict[str, Dict[str, List[Example]]] = collections.defaultdict(
    lambda: {'test': [], 'train': []}
  )
  for split, ex in examples:
    _check_split(split, ('train', 'test'), f'UCF101 example {ex.get("video_id")}')
    by_class[ucf_class_name(str(ex['label_name']))][split].append(ex)
  if not by_class:
    raise ValueError('export: export_ucf101 got no examples')
  class_names = sorted(by_class)  # classInd.txt is alphabetical in UCF101
  class_id = {name: i + 1 for i, name in enumerate(class_names)}
  result = ExportResult(root=root, class_names=class_names)
  video_root = os.path.join(root, 'UCF-101')
  train_lines, test_lines = [], []

  def rel_name(cls: str, number: int) -> str:
    group, clip = number // clips_per_group + 1, number % clips_per_group + 1
    return f'{cls}/v_{cls}_g{group:02d}_c{clip:02d}{extension}'

  for cls in class_names:
    # Test videos fill the first groups; train starts on a fresh group.
    number = 0
    for split in ('test', 'train'):
      for ex in by_class[cls][split]:
        rel = rel_name(cls, number)
        write_video(os.path.join(video_root, rel), ex['video'], float(ex['fps']))
        result.videos.append((rel, split))
        (train_lines if split == 'train' else test_lines).append(
          f'{rel} {class_id[cls]}' if split == 'train' else rel
        )
        number += 1
      number = -(-number // clips_per_group) * clips_per_group
    if cls == class_names[0]:
      like = (by_class[cls]['train'] or by_class[cls]['test'])[0]
      for i, kind in enumerate(broken):
        rel = rel_name(cls, number + i)
        write_broken(kind, os.path.join(video_root, rel), like, short_frames, seed=i)
        result.broken[kind] = rel
        train_lines.append(f'{rel} {class_id[cls]}')
  lists = os.path.join(root, 'ucfTrainTestlist')
  result.split_files = [
    _write_lines(
      os.path.join(lists, 'classInd.txt'), [f'{class_id[c]} {c}' for c in class_names], newline
    ),
    _write_lines(os.path.join(lists, f'trainlist{split_number:02d}.txt'), train_lines, newline),
    _write_lines(os.path.join(lists, f'testlist{split_number:02d}.txt'), test_lines, newline),
  ]
  return result


_HMDB_NAME = re.compile(r'[^A-Za-z0-9_\-]')


def export_hmdb51(
  root: str,
  examples: Iterable[Tuple[str, Example]],
  split_number: int = 1,
  extension: str = '.avi',
  broken: Sequence[str] = (),
  short_frames: int = 2,
  newline: str = '\n',
) -> ExportResult:
  """Writes videos in the HMDB51 layout (see the module docstring).

  Args:
    root: output directory (``videos/`` and ``splits/`` go inside).
    examples: (split, example) pairs, split 'train', 'test' or 'unused'.
    split_number: k of ``<class>_test_split<k>.txt`` (1-3).
    extension: '.avi' (official) or '.mp4'.
    broken: kinds of broken train entries to add to the first class.
    short_frames: frames of the 'short' broken video.
    newline: line ending of the split files.

  Returns:
    ExportResult (paths relative to ``root/videos``).
  """
  by_class: Dict[str, List[Tuple[str, Example]]] = collections.defaultdict(list)
  for split, ex in examples:
    _check_split(split, tuple(SPLIT_IDS_HMDB), f'HMDB51 example {ex.get("video_id")}')
    by_class[str(ex['label_name'])].append((split, ex))
  if not by_class:
    raise ValueError('export: export_hmdb51 got no examples')
  class_names = sorted(by_class)
  result = ExportResult(root=root, class_names=class_names)
  video_root = os.path.join(root, 'videos')
  for cls in class_names:
    lines = []
    for split, ex in by_class[cls]:
      name = _HMDB_NAME.sub('_', str(ex['video_id'])) + extension
      rel = f'{cls}/{name}'
      write_video(os.path.join(video_root, rel), ex['video'], float(ex['fps']))
      result.videos.append((rel, split))
      lines.append(f'{name} {SPLIT_IDS_HMDB[split]} ')
    if cls == class_names[0]:
      like = by_class[cls][0][1]
      for i, kind in enumerate(broken):
        name = f'broken_{kind}_{i}{extension}'
        rel = f'{cls}/{name}'
        write_broken(kind, os.path.join(video_root, rel), like, short_frames, seed=i)
        result.broken[kind] = rel
        lines.append(f'{name} {SPLIT_IDS_HMDB["train"]} ')
    result.split_files.append(
      _write_lines(
        os.path.join(root, 'splits', f'{cls}_test_split{split_number}.txt'), lines, newline
      )
    )
  return result


# --------------------------------------------------------------------------
# Command line.


def synthetic_examples(
  config_name: str = 'tiny', **overrides: Any
) -> Iterable[Tuple[str, Dict[str, Any]]]:
  """(split, example) pairs of a ``synthetic_motion`` config, without TFDS.

  Args:
    config_name: 'default' or 'tiny' (the TFDS configs' sizes, see
      ``jaxvssl.datasets.builders.synthetic_motion``).
    **overrides: num_frames, resolution, fps, num_train, num_test, seed.
  """
  # Local import: the TFDS builder module pulls in TensorFlow, which plain
  # file writing does not need. Sizes are repeated from its named configs.
  from jaxvssl.datasets import synthetic  # pylint: disable=g-import-not-at-top

  presets = {
    'default': dict(
      num_frames=48, resolution=(64, 64), fps=16.0, num_train=16 * 50, num_test=16 * 15, seed=0
    ),
    'tiny': dict(
      num_frames=16, resolution=(32, 32), fps=16.0, num_train=16 * 4, num_test=16 * 2, seed=0
    ),
  }
  if config_name not in presets:
    raise ValueError(f'export: unknown config {config_name!r}; known: {sorted(presets)}')
  unknown = sorted(set(overrides) - set(presets[config_name]))
  if unknown:
    raise ValueError(f'export: unknown overrides {unknown}; known: {sorted(presets[config_name])}')
  p = {**presets[config_name], **overrides}
  res = p['resolution']
  height, width = (res, res) if isinstance(res, int) else res
  cfg = synthetic.SyntheticConfig(
    num_frames=p['num_frames'], height=height, width=width, fps=p['fps'], seed=p['seed']
  )
  for split, count in (('train', p['num_train']), ('test', p['num_test'])):
    for index in range(count):
      yield split, synthetic.generate_example(cfg, split, index)


def export_synthetic(
  root: str,
  layout: str = 'ucf101',
  config_name: str = 'tiny',
  extension: str = '.avi',
  split_number: int = 1,
  broken: Sequence[str] = (),
  **overrides: Any,
) -> ExportResult:
  """Renders a ``synthetic_motion`` config and writes it in ``layout``.

  Args:
    root: output directory.
    layout: 'ucf101' or 'hmdb51'.
    config_name: 'default' or 'tiny' sizes (see ``synthetic_examples``).
    extension: '.avi' or '.mp4'.
    split_number: number of the split files written.
    broken: broken entries to add (subset of ``BROKEN_KINDS``).
    **overrides: num_frames, resolution, fps, num_train, num_test, seed.
  """
  examples = synthetic_examples(config_name, **overrides)
  if layout == 'ucf101':
    return export_ucf101(
      root, examples, split_number=split_number, extension=extension, broken=broken
    )
  if layout == 'hmdb51':
    return export_hmdb51(
      root, examples, split_number=split_number, extension=extension, broken=broken
    )
  raise ValueError(f"export: unknown layout {layout!r}; known: ('ucf101', 'hmdb51')")


def export_main(argv: Optional[Sequence[str]] = None) -> int:
  """Command line: synthetic videos to a layout; returns the exit code (0).

  Example::

    python -m jaxvssl.datasets.export_videos --root=/tmp/ucf --layout=ucf101 --config=tiny \\
        --broken=corrupt,empty,short
  """
  parser = argparse.ArgumentParser(
    prog='export-videos', description='Write synthetic_motion as video files.'
  )
  parser.add_argument('--root', required=True, help='output directory')
  parser.add_argument('--layout', choices=('ucf101', 'hmdb51'), default='ucf101')
  parser.add_argument('--config', default='tiny', help="'default' or 'tiny' sizes")
  parser.add_argument('--num_train', type=int, default=None)
  parser.add_argument('--num_test', type=int, default=None)
  parser.add_argument('--seed', type=int, default=None)
  parser.add_argument('--extension', default='.avi', choices=('.avi', '.mp4'))
  parser.add_argument('--split_number', type=int, default=1)
  parser.add_argument(
    '--broken', default='', help=f'comma-separated subset of {",".join(BROKEN_KINDS)}'
  )
  args = parser.parse_args(argv)
  overrides = {
    k: getattr(args, k) for k in ('num_train', 'num_test', 'seed') if getattr(args, k) is not None
  }
  broken = tuple(b for b in args.broken.split(',') if b)
  unknown = sorted(set(broken) - set(BROKEN_KINDS))
  if unknown:
    parser.error(f'--broken: unknown kinds {unknown}; known: {BROKEN_KINDS}')
  result = export_synthetic(
    args.root, args.layout, args.config, args.extension, args.split_number, broken, **overrides
  )
  counts = collections.Counter(split for _, split in result.videos)
  print(
    f'wrote {len(result.videos)} videos ({dict(counts)}) in {len(result.class_names)} '
    f'classes to {args.root} ({args.layout}); broken: {result.broken or "none"}'
  )
  return 0


if __name__ == '__main__':
  raise SystemExit(export_main())

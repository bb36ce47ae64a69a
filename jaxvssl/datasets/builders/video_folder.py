"""Finding videos on disk, and the ``folder`` layout (one sub-folder per class).

Every real-video builder first turns its annotations into a ``SourceListing``:
the class names, and per split the videos to decode (``VideoTask``) plus the
ones the annotations list but the disk lacks (reported as 'missing'). This
module holds that type, ``VideoIndex`` (one walk over the videos directory,
then case-insensitive lookups) and the listing of the generic ``folder`` layout:

    <videos_dir>/<class name>/**/<video>.<ext>
    <annotations_dir>/<split>.txt     optional, one relative path per line
                                      (``<class>/<video>.<ext>``; anything after
                                      the path on the line is ignored)

Without split files every video goes to the 'train' split. Class labels are the
sorted class folder names, 0-based.

Paths may be local or any ``tf.io.gfile`` URL (gs://...): listing then goes
through TensorFlow's file system layer.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import posixpath
from collections.abc import Iterator, Sequence

from jaxvssl.datasets.decode import BadVideo, VideoTask
from jaxvssl.tf_setup import import_tensorflow

VIDEO_EXTENSIONS = (
  '.avi',
  '.mp4',
  '.mkv',
  '.webm',
  '.mov',
  '.m4v',
  '.mpg',
  '.mpeg',
  '.flv',
  '.3gp',
  '.ogv',
  '.wmv',
)

# Split list file names of the folder layout -> TFDS split name.
FOLDER_SPLIT_FILES = {
  'train.txt': 'train',
  'val.txt': 'validation',
  'validation.txt': 'validation',
  'test.txt': 'test',
}


@dataclasses.dataclass
class SourceListing:
  """What a builder will decode: classes and per-split videos.

  Attributes:
    class_names: label names; label i is class_names[i].
    tasks: split name -> videos found on disk, in annotation order.
    missing: split name -> videos listed by the annotations but absent.
    expected_counts: split name -> the official number of videos of the
      split, when the data set has one (compared with what was written).
    notes: human-readable remarks for the build summary (e.g. a skipped
      split without labels).
  """

  class_names: list[str]
  tasks: dict[str, list[VideoTask]]
  missing: dict[str, list[BadVideo]] = dataclasses.field(default_factory=dict)
  expected_counts: dict[str, int] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)

  def listed(self, split: str) -> int:
    return len(self.tasks.get(split, ())) + len(self.missing.get(split, ()))


def is_remote(path: str) -> bool:
  return '://' in str(path)


def join(root: str, *parts: str) -> str:
  """os.path.join for local paths, '/'-joining for URLs."""
  if is_remote(root):
    return posixpath.join(str(root), *parts)
  return os.path.join(str(root), *parts)


def parent(path: str) -> str:
  """The directory holding ``path`` (a trailing slash is ignored)."""
  if is_remote(path):
    return str(path).rstrip('/').rsplit('/', 1)[0]
  return os.path.dirname(os.path.abspath(str(path)))


def exists(path: str) -> bool:
  if is_remote(path):
    tf = import_tensorflow()
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def is_dir(path: str) -> bool:
  if is_remote(path):
    tf = import_tensorflow()
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def list_dir(path: str) -> list[str]:
  if is_remote(path):
    tf = import_tensorflow()
    return sorted(name.rstrip('/') for name in tf.io.gfile.listdir(path))
  return sorted(os.listdir(path))


def require_dir(path: str, what: str) -> None:
  """Raises FileNotFoundError('<what> not found: <path>') unless it is a directory."""
  if not is_dir(path):
    raise FileNotFoundError(f'{what} not found: {path}')


def find_annotations_dir(videos_dir: str, dir_name: str, dataset: str, holding: str) -> str:
  """The annotation directory ``dir_name`` inside ``videos_dir`` or beside it (the usual unzip).

  Raises:
    FileNotFoundError: neither exists; the message names both candidates and what the directory
      holds (``holding``, e.g. 'classInd.txt and trainlist01.txt').
  """
  candidates = [join(videos_dir, dir_name), join(parent(videos_dir), dir_name)]
  for candidate in candidates:
    if is_dir(candidate):
      return candidate
  raise FileNotFoundError(
    f'{dataset} split files not found: no directory {candidates[0]} or '
    f'{candidates[1]}; pass the directory holding {holding} (--annotations_dir)'
  )


def read_text(path: str) -> str:
  """Reads an annotation file; a missing one is an error that names it."""
  if not exists(path):
    raise FileNotFoundError(f'annotation file not found: {path}')
  if is_remote(path):
    tf = import_tensorflow()
    with tf.io.gfile.GFile(path, 'rb') as f:
      data = f.read()
  else:
    with open(path, 'rb') as f:
      data = f.read()
  # Official split files are Windows text (CRLF) and plain ASCII, but some
  # mirrors re-save them as UTF-8 with a BOM.
  return data.decode('utf-8-sig', errors='replace')


def _walk(root: str) -> Iterator[tuple[str, list[str]]]:
  if is_remote(root):
    tf = import_tensorflow()
    for dirpath, _, filenames in tf.io.gfile.walk(root):
      yield dirpath, filenames
  else:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
      dirnames.sort()
      yield dirpath, filenames


class VideoIndex:
  """Every file under a directory, found by relative path, name or stem.

  Lookups ignore case: data set archives and their annotation files disagree
  on case (UCF101 lists 'HandstandPushups/v_HandStandPushups_g08_c01.avi').
  """

  def __init__(self, root: str):
    require_dir(root, 'videos directory')
    self.root = str(root)
    self.by_relpath: dict[str, str] = {}
    self.by_name: dict[str, list[str]] = collections.defaultdict(list)
    self.by_stem: dict[str, list[str]] = collections.defaultdict(list)
    self.num_videos = 0
    for dirpath, filenames in _walk(self.root):
      rel_dir = _relative(dirpath, self.root)
      for name in sorted(filenames):
        path = join(dirpath, name)
        rel = posixpath.join(rel_dir, name) if rel_dir else name
        self.by_relpath[rel.lower()] = path
        self.by_name[name.lower()].append(path)
        stem, ext = posixpath.splitext(name)
        self.by_stem[stem].append(path)
        self.num_videos += ext.lower() in VIDEO_EXTENSIONS
    if not self.num_videos:
      raise ValueError(f'no video files ({", ".join(VIDEO_EXTENSIONS)}) under {root}')

  def find(self, relpath: str) -> str | None:
    """The file at ``relpath`` (any case), else the only file of that name."""
    rel = relpath.replace('\\', '/').strip('/').lower()
    if rel in self.by_relpath:
      return self.by_relpath[rel]
    # Some copies flatten or re-nest the class folders; a file name that is
    # unique in the whole tree is still unambiguous.
    candidates = self.by_name.get(posixpath.basename(rel), [])
    return candidates[0] if len(candidates) == 1 else None

  def find_stem(self, stems: Sequence[str]) -> str | None:
    """The first video whose exact (case-sensitive) stem is in ``stems``."""
    for stem in stems:
      for path in self.by_stem.get(stem, ()):
        if posixpath.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
          return path
    return None


def _relative(path: str, root: str) -> str:
  if is_remote(root):
    rel = str(path)[len(root) :]
    return rel.strip('/')
  rel = os.path.relpath(path, root)
  return '' if rel == '.' else rel.replace(os.sep, '/')


def video_id_from_relpath(relpath: str) -> str:
  """'Class/sub/clip.avi' -> 'Class/sub/clip' (unique within a folder tree)."""
  return posixpath.splitext(relpath.replace('\\', '/').strip('/'))[0]


def list_folder(videos_dir: str, annotations_dir: str | None = None) -> SourceListing:
  """Listing of the ``folder`` layout (see the module docstring).

  Raises:
    FileNotFoundError: videos_dir, or a given annotations_dir, does not exist.
    ValueError: no class folder / no video, or a split file names a path
      outside the class folders.
  """
  index = VideoIndex(videos_dir)
  class_names = [name for name in list_dir(videos_dir) if is_dir(join(videos_dir, name))]
  if not class_names:
    raise ValueError(f'no class sub-folders in {videos_dir}')
  label_of = {name.lower(): i for i, name in enumerate(class_names)}

  def task_for(rel: str) -> VideoTask | None:
    path = index.find(rel)
    cls = rel.replace('\\', '/').strip('/').split('/')[0].lower()
    if cls not in label_of:
      raise ValueError(
        f'{rel!r} is not inside a class folder of {videos_dir} (classes: {class_names})'
      )
    if path is None:
      return None
    return VideoTask(path=path, video_id=video_id_from_relpath(rel), label=label_of[cls])

  if annotations_dir is None:
    tasks = []
    for rel, path in sorted(index.by_relpath.items()):
      if '/' in rel and posixpath.splitext(rel)[1] in VIDEO_EXTENSIONS:
        # Keys are lower-case; the id keeps the file system's case.
        tasks.append(
          VideoTask(
            path=path,
            video_id=video_id_from_relpath(_relative(path, videos_dir)),
            label=label_of[rel.split('/')[0]],
          )
        )
    return SourceListing(class_names=class_names, tasks={'train': tasks})

  if not is_dir(annotations_dir):
    raise FileNotFoundError(f'split list directory not found: {annotations_dir}')
  present = [f for f in FOLDER_SPLIT_FILES if exists(join(annotations_dir, f))]
  if not present:
    raise FileNotFoundError(
      f'no split list file in {annotations_dir}: expected one of {sorted(FOLDER_SPLIT_FILES)}'
    )
  listing = SourceListing(class_names=class_names, tasks={}, missing={})
  for filename in present:
    split = FOLDER_SPLIT_FILES[filename]
    if split in listing.tasks:
      raise ValueError(f'two split files for split {split!r} in {annotations_dir}')
    tasks, missing = [], []
    for line in read_text(join(annotations_dir, filename)).splitlines():
      if not line.strip():
        continue
      rel = line.split()[0]
      task = task_for(rel)
      if task is None:
        missing.append(
          BadVideo(
            path=join(videos_dir, rel),
            video_id=video_id_from_relpath(rel),
            reason='missing',
            detail=f'listed in {join(annotations_dir, filename)}',
          )
        )
      else:
        tasks.append(task)
    listing.tasks[split], listing.missing[split] = tasks, missing
  return listing

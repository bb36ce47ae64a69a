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
sorted names of the class folders that hold at least one video, 0-based. A
sub-folder without any video file (nor any file a split list names) is NOT a
class: an empty class would be a label no example has, which shifts every
accuracy and feeds a dead logit. The build summary names each such folder in
a note ("... holds no video: not a class"), and so it does for video files
directly in ``<videos_dir>`` (in no class folder: skipped) and, with split
files, for a class none of whose videos is listed.

Split list lines: the path is everything up to its video extension (one of
``VIDEO_EXTENSIONS``, any case), so names with spaces work
(``Class/my clip.avi 3`` -> ``Class/my clip.avi``); see ``parse_list_line``.

Unique ids: every builder's listing goes through ``make_ids_unique`` (called by
``VideoFilesBuilder``), because the id of a video is its TFDS key. Two files
that would share an id (``clip.avi`` and ``clip.mp4`` in one folder) both stay,
each with its path relative to the videos directory as id (``Class/clip.avi``,
``Class/clip.mp4``; a note of the summary lists them); a file listed twice in
one split is written once and the repeat is reported as 'duplicate' in
``bad_videos.tsv``.

Paths may be local or any ``tf.io.gfile`` URL (gs://...): listing then goes
through TensorFlow's file system layer.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence

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

# A video extension that ends a path on a split list line (followed by blanks or the line end).
_PATH_END = re.compile(
  '(?:' + '|'.join(re.escape(ext) for ext in VIDEO_EXTENSIONS) + r')(?=\s|$)', re.IGNORECASE
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
    duplicates: split name -> repeated listings of a file already in ``tasks``
      (reason 'duplicate'; filled by ``make_ids_unique``).
    expected_counts: split name -> the official number of videos of the
      split, when the data set has one (compared with what was written).
    notes: human-readable remarks for the build summary (e.g. a skipped
      split without labels).
  """

  class_names: list[str]
  tasks: dict[str, list[VideoTask]]
  missing: dict[str, list[BadVideo]] = dataclasses.field(default_factory=dict)
  duplicates: dict[str, list[BadVideo]] = dataclasses.field(default_factory=dict)
  expected_counts: dict[str, int] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)

  def listed(self, split: str) -> int:
    return (
      len(self.tasks.get(split, ()))
      + len(self.missing.get(split, ()))
      + len(self.duplicates.get(split, ()))
    )

  def not_decoded(self, split: str) -> list[BadVideo]:
    """Report lines known before decoding: missing files and repeated listings."""
    return list(self.missing.get(split, ())) + list(self.duplicates.get(split, ()))


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
    # (relative path as on disk, full path) of every file, in walk order.
    self.files: list[tuple[str, str]] = []
    self._exact: dict[str, str] = {}
    self.by_relpath: dict[str, str] = {}
    self.by_name: dict[str, list[str]] = collections.defaultdict(list)
    self.by_stem: dict[str, list[str]] = collections.defaultdict(list)
    self.num_videos = 0
    for dirpath, filenames in _walk(self.root):
      rel_dir = _relative(dirpath, self.root)
      for name in sorted(filenames):
        path = join(dirpath, name)
        rel = posixpath.join(rel_dir, name) if rel_dir else name
        self.files.append((rel, path))
        self._exact[rel] = path
        # Case variants (a/Clip.avi, a/clip.avi) share a key: an exact match
        # wins in find(), else the first; listings without split files use
        # self.files, so every variant is kept.
        self.by_relpath.setdefault(rel.lower(), path)
        self.by_name[name.lower()].append(path)
        stem, ext = posixpath.splitext(name)
        self.by_stem[stem].append(path)
        self.num_videos += ext.lower() in VIDEO_EXTENSIONS
    if not self.num_videos:
      raise ValueError(f'no video files ({", ".join(VIDEO_EXTENSIONS)}) under {root}')

  def find(self, relpath: str) -> str | None:
    """The file at ``relpath`` (exact case first, then any case), else the only file of that name."""
    exact = relpath.replace('\\', '/').strip('/')
    if exact in self._exact:
      return self._exact[exact]
    rel = exact.lower()
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


def is_video_name(name: str) -> bool:
  return posixpath.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def parse_list_line(line: str, exists: Callable[[str], bool] | None = None) -> tuple[str, str]:
  """(path, rest) of a split list line: the path ends with a video extension.

  Names may contain spaces: ``'Class/my clip.avi 3'`` -> ``('Class/my clip.avi',
  '3')``. When several prefixes end with an extension (``'a.avi b.avi 3'``),
  the longest one that ``exists(prefix)`` accepts wins, else the longest. A
  line without a video extension falls back to the whole line if it exists,
  else its first blank-separated token (the old rule).
  """
  text = line.strip()
  candidates = [text[: m.end()] for m in _PATH_END.finditer(text)][::-1]
  if not candidates:
    candidates = list(dict.fromkeys([text, text.split()[0]])) if text else ['']
    if exists is not None and exists(candidates[0]):
      return candidates[0], ''
    return candidates[-1], text[len(candidates[-1]) :].strip()
  chosen = candidates[0]
  if exists is not None:
    chosen = next((c for c in candidates if exists(c)), chosen)
  return chosen, text[len(chosen) :].strip()


def relative(path: str, root: str) -> str:
  """``path`` relative to ``root``, '/'-separated ('' for the root itself)."""
  return _relative(path, root)


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

  Classes are the sub-folders that hold (at any depth) a video file or a file a split list names;
  every other sub-folder, and every video directly in ``videos_dir``, is named in a note and gets
  no label. Split list lines are read with ``parse_list_line`` (names may contain spaces).

  Raises:
    FileNotFoundError: videos_dir, or a given annotations_dir, does not exist.
    ValueError: no class folder / no video, or a split file names a path
      outside the class folders.
  """
  index = VideoIndex(videos_dir)
  folders = [name for name in list_dir(videos_dir) if is_dir(join(videos_dir, name))]
  if not folders:
    raise ValueError(f'no class sub-folders in {videos_dir}')

  def top_folder(rel: str) -> str:
    return rel.replace('\\', '/').strip('/').split('/')[0].lower()

  # Split lists are read first: a listed file makes its folder a class even
  # with an extension outside VIDEO_EXTENSIONS.
  split_lines: dict[str, tuple[str, list[str]]] = {}
  if annotations_dir is not None:
    if not is_dir(annotations_dir):
      raise FileNotFoundError(f'split list directory not found: {annotations_dir}')
    present = [f for f in FOLDER_SPLIT_FILES if exists(join(annotations_dir, f))]
    if not present:
      raise FileNotFoundError(
        f'no split list file in {annotations_dir}: expected one of {sorted(FOLDER_SPLIT_FILES)}'
      )
    for filename in present:
      split = FOLDER_SPLIT_FILES[filename]
      if split in split_lines:
        raise ValueError(f'two split files for split {split!r} in {annotations_dir}')
      list_file = join(annotations_dir, filename)
      split_lines[split] = (
        list_file,
        [
          parse_list_line(line, exists=lambda rel: index.find(rel) is not None)[0]
          for line in read_text(list_file).splitlines()
          if line.strip()
        ],
      )

  holding = collections.Counter()
  loose = []
  for rel, _ in index.files:
    if is_video_name(rel):
      if '/' in rel:
        holding[top_folder(rel)] += 1
      else:
        loose.append(rel)
  for _, rels in split_lines.values():
    for rel in rels:
      if index.find(rel) is not None:
        holding[top_folder(rel)] += 1
  class_names = [name for name in folders if holding[name.lower()]]
  empty = {name.lower(): name for name in folders if not holding[name.lower()]}
  if not class_names:
    raise ValueError(
      f'no class sub-folder of {videos_dir} holds a video file ({", ".join(VIDEO_EXTENSIONS)})'
    )
  label_of = {name.lower(): i for i, name in enumerate(class_names)}
  notes = [
    f'class folder {join(videos_dir, name)} holds no video file: not a class '
    f'(labels 0..{len(class_names) - 1} are the {len(class_names)} folders with videos)'
    for name in empty.values()
  ]
  if loose:
    shown = ', '.join(loose[:3]) + (', ...' if len(loose) > 3 else '')
    notes.append(
      f'{len(loose)} video file(s) directly in {videos_dir}, in no class folder, skipped: {shown}'
    )

  if annotations_dir is None:
    tasks = []
    for rel, path in sorted(index.files, key=lambda item: (item[0].lower(), item[0])):
      cls = top_folder(rel)
      if '/' in rel and is_video_name(rel) and cls in label_of:
        tasks.append(VideoTask(path=path, video_id=video_id_from_relpath(rel), label=label_of[cls]))
    return SourceListing(class_names=class_names, tasks={'train': tasks}, notes=notes)

  listing = SourceListing(class_names=class_names, tasks={}, missing={}, notes=notes)
  for split, (list_file, rels) in split_lines.items():
    tasks, missing = [], []
    for rel in rels:
      cls = top_folder(rel)
      if cls not in label_of and cls not in empty:
        raise ValueError(
          f'{rel!r} is not inside a class folder of {videos_dir} (classes: {class_names})'
        )
      path = index.find(rel) if cls in label_of else None
      if path is None:
        missing.append(
          BadVideo(
            path=join(videos_dir, rel),
            video_id=video_id_from_relpath(rel),
            reason='missing',
            detail=f'listed in {list_file}',
          )
        )
      else:
        tasks.append(VideoTask(path=path, video_id=video_id_from_relpath(rel), label=label_of[cls]))
    listing.tasks[split], listing.missing[split] = tasks, missing
  listed_labels = {task.label for tasks in listing.tasks.values() for task in tasks}
  for label, name in enumerate(class_names):
    if label not in listed_labels:
      listing.notes.append(
        f'class folder {join(videos_dir, name)} has videos but no split list names one of '
        f'them: label {label} has no example'
      )
  return listing


def make_ids_unique(listing: SourceListing, videos_dir: str) -> None:
  """Makes the video ids of every split unique (they are the TFDS keys), in place.

  * A file listed again in the same split stays once; each repeat becomes a
    'duplicate' line of the bad-video report (``listing.duplicates``).
  * Different files that would share an id (``Class/clip.avi`` and
    ``Class/clip.mp4`` -> 'Class/clip') all stay: each takes its path relative
    to ``videos_dir`` as id, and a note of the summary says so.
  * Should an id still clash after that, the later file is reported as
    'duplicate' as well. A build never aborts on a key.
  """
  for split, tasks in listing.tasks.items():
    duplicates = listing.duplicates.setdefault(split, [])
    first_of_path: dict[str, VideoTask] = {}
    distinct = []
    for task in tasks:
      first = first_of_path.setdefault(task.path, task)
      if first is task:
        distinct.append(task)
      else:
        duplicates.append(
          BadVideo(
            path=task.path,
            video_id=task.video_id,
            reason='duplicate',
            detail=f'listed again in split {split!r}; written once, as {first.video_id!r}',
          )
        )
    id_counts = collections.Counter(task.video_id for task in distinct)
    kept, taken, renamed = [], set(), []
    for task in distinct:
      if id_counts[task.video_id] > 1:
        task = dataclasses.replace(task, video_id=relative(task.path, videos_dir))
        renamed.append(task.video_id)
      if task.video_id in taken:
        duplicates.append(
          BadVideo(
            path=task.path,
            video_id=task.video_id,
            reason='duplicate',
            detail=f'another video of split {split!r} has the id {task.video_id!r}',
          )
        )
        continue
      taken.add(task.video_id)
      kept.append(task)
    if renamed:
      shown = ', '.join(renamed[:4]) + (', ...' if len(renamed) > 4 else '')
      listing.notes.append(
        f'split {split!r}: {len(renamed)} videos would share their id with another one (same '
        'name up to the extension, or the same name in another folder); all are kept, each with '
        f'its path under the videos directory as id: {shown}'
      )
    listing.tasks[split] = kept

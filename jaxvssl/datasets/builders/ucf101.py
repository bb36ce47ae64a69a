"""UCF101 annotations: the official ``ucfTrainTestlist`` split files.

Layout (as extracted from the official UCF101.rar and
UCF101TrainTestSplits-RecognitionTask.zip):

    <videos_dir>/<ClassName>/v_<ClassName>_gXX_cYY.avi          13,320 videos
    <annotations_dir>/classInd.txt        '1 ApplyEyeMakeup' ... '101 YoYo'
    <annotations_dir>/trainlist0{1,2,3}.txt   'ApplyEyeMakeup/v_..._g08_c01.avi 1'
    <annotations_dir>/testlist0{1,2,3}.txt    'ApplyEyeMakeup/v_..._g01_c01.avi'

Labels are 0-based: classInd index - 1. A video's class is the folder named
on its list line, matched to classInd without regard to case, because the
release is inconsistent: classInd and the folders say 'HandstandPushups' while
the files are 'v_HandStandPushups_*.avi' (and some mirrors rename the
folder). Files are looked up the same way (see ``VideoIndex.find``). On a
list line the path runs up to its video extension, so file names with spaces
work (``video_folder.parse_list_line``).
"""

from __future__ import annotations

import re

from jaxvssl.datasets.builders import video_folder
from jaxvssl.datasets.decode import BadVideo, VideoTask

SPLIT_NUMBERS = (1, 2, 3)
# Official (train, test) sizes of the three splits; a build that writes other
# numbers is not comparable with published results, so it gets a warning.
EXPECTED_COUNTS = {
  1: {'train': 9537, 'test': 3783},
  2: {'train': 9586, 'test': 3734},
  3: {'train': 9624, 'test': 3696},
}
NUM_CLASSES = 101
ANNOTATIONS_DIR_NAME = 'ucfTrainTestlist'
_CLASS_FROM_NAME = re.compile(r'^v_(.+)_g\d+_c\d+$', re.IGNORECASE)


def default_annotations_dir(videos_dir: str) -> str:
  """``ucfTrainTestlist`` inside ``videos_dir`` or beside it (the usual unzip)."""
  return video_folder.find_annotations_dir(
    videos_dir, ANNOTATIONS_DIR_NAME, 'UCF101', 'classInd.txt and trainlist01.txt'
  )


def read_class_index(annotations_dir: str) -> list[str]:
  """classInd.txt -> class names ordered by their 1-based index."""
  path = video_folder.join(annotations_dir, 'classInd.txt')
  entries = {}
  for line_number, line in enumerate(video_folder.read_text(path).splitlines(), 1):
    if not line.strip():
      continue
    parts = line.split(maxsplit=1)
    if len(parts) != 2 or not parts[0].isdigit():
      raise ValueError(f'{path}:{line_number}: expected "<index> <ClassName>", got {line!r}')
    entries[int(parts[0])] = parts[1].strip()
  if sorted(entries) != list(range(1, len(entries) + 1)):
    raise ValueError(f'{path}: class indices are not 1..{len(entries)}')
  return [entries[i] for i in range(1, len(entries) + 1)]


def _class_of(relpath: str) -> str:
  parts = relpath.split('/')
  if len(parts) > 1:
    return parts[-2]
  match = _CLASS_FROM_NAME.match(parts[-1].rsplit('.', 1)[0])
  if not match:
    raise ValueError(f'cannot tell the class of {relpath!r}')
  return match.group(1)


def list_ucf101(
  videos_dir: str, annotations_dir: str | None, split_number: int
) -> video_folder.SourceListing:
  """Train / test videos of official split ``split_number`` (1, 2 or 3).

  Raises:
    FileNotFoundError: a split file, classInd.txt or the videos directory is
      missing (the message names the path).
    ValueError: a list line names a class that is not in classInd.txt.
  """
  if split_number not in SPLIT_NUMBERS:
    raise ValueError(f'UCF101 split must be one of {SPLIT_NUMBERS}, got {split_number}')
  video_folder.require_dir(videos_dir, 'videos directory')
  if annotations_dir is None:
    annotations_dir = default_annotations_dir(videos_dir)
  class_names = read_class_index(annotations_dir)
  label_of = {name.lower(): i for i, name in enumerate(class_names)}
  list_files = {
    'train': video_folder.join(annotations_dir, f'trainlist{split_number:02d}.txt'),
    'test': video_folder.join(annotations_dir, f'testlist{split_number:02d}.txt'),
  }
  # Read every annotation file before walking the (large) videos directory,
  # so a wrong --annotations_dir fails at once.
  texts = {split: video_folder.read_text(path) for split, path in list_files.items()}
  index = video_folder.VideoIndex(videos_dir)
  listing = video_folder.SourceListing(
    class_names=class_names,
    tasks={},
    missing={},
    expected_counts=dict(EXPECTED_COUNTS[split_number]),
  )
  if len(class_names) != NUM_CLASSES:
    listing.notes.append(
      f'{video_folder.join(annotations_dir, "classInd.txt")} lists '
      f'{len(class_names)} classes, the official release {NUM_CLASSES}'
    )
  for split, text in texts.items():
    tasks, missing = [], []
    for line_number, line in enumerate(text.splitlines(), 1):
      if not line.strip():
        continue
      # The path runs up to its video extension: names may contain spaces.
      relpath, _ = video_folder.parse_list_line(
        line, exists=lambda rel: index.find(rel) is not None
      )
      relpath = relpath.replace('\\', '/')
      class_name = _class_of(relpath)
      if class_name.lower() not in label_of:
        raise ValueError(
          f'{list_files[split]}:{line_number}: class {class_name!r} is not in classInd.txt'
        )
      video_id = relpath.rsplit('/', 1)[-1].rsplit('.', 1)[0]
      path = index.find(relpath)
      if path is None:
        missing.append(
          BadVideo(
            path=video_folder.join(videos_dir, relpath),
            video_id=video_id,
            reason='missing',
            detail=f'listed in {list_files[split]}',
          )
        )
        continue
      tasks.append(VideoTask(path=path, video_id=video_id, label=label_of[class_name.lower()]))
    listing.tasks[split], listing.missing[split] = tasks, missing
  return listing

"""HMDB51 annotations: the official per-class split files.

Layout (hmdb51_org.rar with each per-class .rar extracted, and
test_train_splits.rar):

    <videos_dir>/<class>/<video>.avi                       6,766 videos
    <annotations_dir>/<class>_test_split{1,2,3}.txt        '<video>.avi 1'

On each split-file line the id says 1 = train, 2 = test, 0 = unused (in none
of the two). Every split has 70 train and 30 test videos per class: 3,570 /
1,530. Class names come from the split file names and labels are their
sorted order, 0-based (as in TFDS, torchvision and most published code).
"""

from __future__ import annotations

import re

from jaxvssl.datasets.builders import video_folder
from jaxvssl.datasets.decode import BadVideo, VideoTask

SPLIT_NUMBERS = (1, 2, 3)
EXPECTED_COUNTS = {'train': 3570, 'test': 1530}
NUM_CLASSES = 51
ANNOTATIONS_DIR_NAME = 'testTrainMulti_7030_splits'
# Id on a split-file line -> TFDS split (0 = not used by this split).
SPLIT_OF_ID = {'1': 'train', '2': 'test'}


def default_annotations_dir(videos_dir: str) -> str:
  """``testTrainMulti_7030_splits`` inside ``videos_dir`` or beside it."""
  return video_folder.find_annotations_dir(
    videos_dir, ANNOTATIONS_DIR_NAME, 'HMDB51', '<class>_test_split1.txt'
  )


def list_hmdb51(
  videos_dir: str, annotations_dir: str | None, split_number: int
) -> video_folder.SourceListing:
  """Train / test videos of split ``split_number`` (1, 2 or 3).

  Raises:
    FileNotFoundError: the annotation directory has no split file for this
      split, or one class lacks its file (the message names the path).
    ValueError: a line is not '<video> <0|1|2>'.
  """
  if split_number not in SPLIT_NUMBERS:
    raise ValueError(f'HMDB51 split must be one of {SPLIT_NUMBERS}, got {split_number}')
  video_folder.require_dir(videos_dir, 'videos directory')
  if annotations_dir is None:
    annotations_dir = default_annotations_dir(videos_dir)
  if not video_folder.is_dir(annotations_dir):
    raise FileNotFoundError(f'HMDB51 split directory not found: {annotations_dir}')
  pattern = re.compile(r'^(.+)_test_split([123])\.txt$')
  all_classes = sorted(
    {m.group(1) for name in video_folder.list_dir(annotations_dir) if (m := pattern.match(name))}
  )
  if not all_classes:
    raise FileNotFoundError(
      f'no HMDB51 split file (<class>_test_split{split_number}.txt) in {annotations_dir}'
    )
  split_files = {
    c: video_folder.join(annotations_dir, f'{c}_test_split{split_number}.txt') for c in all_classes
  }
  # A class with split-1 files but no split-2 file is a broken copy: name it.
  texts = {c: video_folder.read_text(path) for c, path in split_files.items()}
  index = video_folder.VideoIndex(videos_dir)
  listing = video_folder.SourceListing(
    class_names=all_classes,
    tasks={'train': [], 'test': []},
    missing={'train': [], 'test': []},
    expected_counts=dict(EXPECTED_COUNTS),
  )
  if len(all_classes) != NUM_CLASSES:
    listing.notes.append(
      f'{annotations_dir} has split files for {len(all_classes)} classes, the release {NUM_CLASSES}'
    )
  for label, class_name in enumerate(all_classes):
    for line_number, line in enumerate(texts[class_name].splitlines(), 1):
      if not line.strip():
        continue
      # '<video> <id>': the id is the last field, the name all before it
      # (names may contain spaces).
      parts = line.strip().rsplit(maxsplit=1)
      if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
        raise ValueError(
          f'{split_files[class_name]}:{line_number}: expected "<video> <0|1|2>", got {line!r}'
        )
      split = SPLIT_OF_ID.get(parts[1])
      if split is None:
        continue
      name = parts[0]
      video_id = name.rsplit('.', 1)[0]
      path = index.find(f'{class_name}/{name}')
      if path is None:
        listing.missing[split].append(
          BadVideo(
            path=video_folder.join(videos_dir, class_name, name),
            video_id=video_id,
            reason='missing',
            detail=f'listed in {split_files[class_name]}',
          )
        )
      else:
        listing.tasks[split].append(VideoTask(path=path, video_id=video_id, label=label))
  return listing

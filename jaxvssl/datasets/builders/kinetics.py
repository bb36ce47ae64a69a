"""Kinetics-400 / 600 / 700 annotations: the official CSV files.

Layout (annotations from the official release; clips fetched by any of the
usual downloaders, which name a clip by YouTube id and trimmed times):

    <annotations_dir>/train.csv, validate.csv, test.csv
        label,youtube_id,time_start,time_end,split[,is_cc]
    <videos_dir>/**/<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>
        (any sub-folders, e.g. <split>/<label>/; a clip named just
        <youtube_id>.<ext> is accepted too)

Class names are the sorted distinct labels of train.csv; labels are 0-based.
'validate' becomes the TFDS split 'validation'. A CSV without labels (the
original Kinetics-400 test.csv) is skipped with a note. YouTube takedowns make
every copy incomplete: absent clips are reported as 'missing' and the split
sizes vary, so there are no expected counts.
"""

from __future__ import annotations

import csv
import io

from jaxvssl.datasets.builders import video_folder
from jaxvssl.datasets.decode import BadVideo, VideoTask

VARIANTS = ('400', '600', '700')
NUM_CLASSES = {'400': 400, '600': 600, '700': 700}
# CSV file names (first one present wins) -> TFDS split.
CSV_FILES = {
  'train': ('train.csv',),
  'validation': ('validate.csv', 'val.csv', 'validation.csv'),
  'test': ('test.csv',),
}
REQUIRED_COLUMNS = ('youtube_id', 'time_start', 'time_end')


def clip_id(youtube_id: str, time_start: str, time_end: str) -> str:
  """'abc', '12', '22.0' -> 'abc_000012_000022' (the downloaders' file stem)."""
  return f'{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}'


def _read_csv(path: str) -> list[dict[str, str]]:
  rows = list(csv.DictReader(io.StringIO(video_folder.read_text(path))))
  if not rows:
    raise ValueError(f'{path}: no rows')
  missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
  if missing:
    raise ValueError(
      f'{path}: missing columns {missing}; expected label,youtube_id,time_start,time_end,split'
    )
  return rows


def list_kinetics(
  videos_dir: str, annotations_dir: str, variant: str
) -> video_folder.SourceListing:
  """Clips of every split that has a labelled CSV.

  Raises:
    FileNotFoundError: annotations_dir or its train.csv is missing.
    ValueError: a CSV lacks columns, or a validation/test label is not a
      train label.
  """
  if variant not in VARIANTS:
    raise ValueError(f'Kinetics variant must be one of {VARIANTS}, got {variant!r}')
  video_folder.require_dir(videos_dir, 'videos directory')
  if annotations_dir is None:
    raise FileNotFoundError(
      'Kinetics needs the directory of its CSV annotations '
      '(train.csv, validate.csv, test.csv): pass --annotations_dir'
    )
  if not video_folder.is_dir(annotations_dir):
    raise FileNotFoundError(f'Kinetics annotation directory not found: {annotations_dir}')
  csv_paths = {}
  for split, names in CSV_FILES.items():
    for name in names:
      path = video_folder.join(annotations_dir, name)
      if video_folder.exists(path):
        csv_paths[split] = path
        break
  if 'train' not in csv_paths:
    raise FileNotFoundError(
      f'Kinetics train annotations not found: {video_folder.join(annotations_dir, "train.csv")}'
    )
  rows = {split: _read_csv(path) for split, path in csv_paths.items()}
  class_names = sorted({r['label'] for r in rows['train'] if r.get('label')})
  if not class_names:
    raise ValueError(f'{csv_paths["train"]}: no labels')
  label_of = {name: i for i, name in enumerate(class_names)}
  index = video_folder.VideoIndex(videos_dir)
  listing = video_folder.SourceListing(class_names=class_names, tasks={}, missing={})
  if len(class_names) != NUM_CLASSES[variant]:
    listing.notes.append(
      f'{csv_paths["train"]} has {len(class_names)} '
      f'classes, Kinetics-{variant} {NUM_CLASSES[variant]}'
    )
  for split, split_rows in rows.items():
    if not any(r.get('label') for r in split_rows):
      listing.notes.append(f'{csv_paths[split]} has no labels: split {split!r} skipped')
      continue
    tasks, missing, seen, duplicates = [], [], set(), 0
    for row_number, row in enumerate(split_rows, 2):  # line 1 is the header
      label = row.get('label', '')
      if label not in label_of:
        raise ValueError(
          f'{csv_paths[split]}:{row_number}: label {label!r} is not a label of {csv_paths["train"]}'
        )
      video_id = clip_id(row['youtube_id'], row['time_start'], row['time_end'])
      if video_id in seen:  # The id is the TFDS key: it must be unique.
        duplicates += 1
        continue
      seen.add(video_id)
      path = index.find_stem([video_id, row['youtube_id']])
      if path is None:
        missing.append(
          BadVideo(
            path=video_folder.join(videos_dir, f'{video_id}.mp4'),
            video_id=video_id,
            reason='missing',
            detail=f'{csv_paths[split]}:{row_number}',
          )
        )
      else:
        tasks.append(VideoTask(path=path, video_id=video_id, label=label_of[label]))
    if duplicates:
      listing.notes.append(f'{csv_paths[split]}: {duplicates} duplicate rows ignored')
    listing.tasks[split], listing.missing[split] = tasks, missing
  return listing

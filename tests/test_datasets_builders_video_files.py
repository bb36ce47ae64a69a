"""Real file names in `jaxvssl prepare`: same stems, spaces, empty class folders, repeats.

Builds tiny folder / UCF101 / HMDB51 layouts of real encoded videos (the helpers of
test_datasets_prepare: 64x48, 20 frames at 10 fps, stored at short side 32) and checks that
every good video is written, every bad one is reported in bad_videos.tsv and that the build
never aborts.
"""

from __future__ import annotations

import csv
import pathlib

import pytest

from jaxvssl.datasets import decode
from jaxvssl.datasets.builders import hmdb51 as hmdb51_lib
from jaxvssl.datasets.builders import ucf101 as ucf101_lib
from jaxvssl.datasets.builders import video_folder
from tests.test_datasets_prepare import (
  OPTIONS,
  moving_frames,
  read_split,
  write_corrupt,
  write_video,
  write_zero_length,
)


def report_rows(builder) -> list[dict[str, str]]:
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  text = (builder.data_path / video_files.REPORT_TSV).read_text()
  return list(csv.DictReader(text.splitlines(), delimiter='\t'))


def make_folder(root: pathlib.Path) -> pathlib.Path:
  """Classes 'a' (clip.avi + clip.mp4: one stem), 'b_empty' (no video), 'c' (a name with
  spaces and a corrupt file); a video directly in the root; a README in the empty folder."""
  videos = root / 'videos'
  write_video(videos / 'a' / 'clip.avi', moving_frames(seed=1))
  write_video(videos / 'a' / 'clip.mp4', moving_frames(seed=2), codec='libx264')
  (videos / 'b_empty').mkdir(parents=True)
  (videos / 'b_empty' / 'README.txt').write_text('not a video\n')
  write_video(videos / 'c' / 'my clip 01.avi', moving_frames(seed=3))
  write_corrupt(videos / 'c' / 'broken.avi')
  write_video(videos / 'stray.avi', moving_frames(seed=4))
  return videos


def test_parse_list_line_reads_names_with_spaces():
  parse = video_folder.parse_list_line
  assert parse('path/with space.avi 3') == ('path/with space.avi', '3')
  assert parse('  Class/v_a b.AVI\r\n') == ('Class/v_a b.AVI', '')
  assert parse('a/clip.mp4') == ('a/clip.mp4', '')
  # Two prefixes end with an extension: the existing file wins, else the longest.
  assert parse('a/x.avi y.avi 2') == ('a/x.avi y.avi', '2')
  assert parse('a/x.avi y.avi 2', exists=lambda p: p == 'a/x.avi') == ('a/x.avi', 'y.avi 2')
  # No known extension: the old rule (first token) unless the whole line is a file.
  assert parse('a/clip.ts 1') == ('a/clip.ts', '1')
  assert parse('a/my clip.ts', exists=lambda p: p == 'a/my clip.ts') == ('a/my clip.ts', '')


def test_folder_build_keeps_same_stem_videos_and_skips_empty_class(tmp_path, capsys):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxvssl.datasets.prepare import prepare_main  # pylint: disable=g-import-not-at-top

  videos = make_folder(tmp_path)
  argv = ['folder', '--videos_dir', str(videos), '--data_dir', str(tmp_path / 'tfds')]
  argv += ['--short_side', '32', '--num_workers', '1', '--config_name', 'names']
  assert prepare_main(argv) == 0  # no DuplicatedKeysError
  out = capsys.readouterr().out
  assert 'written       3 of       4 listed; bad 1 (unreadable 1)' in out
  assert f'class folder {videos / "b_empty"} holds no video file: not a class' in out
  assert 'a/clip.avi, a/clip.mp4' in out  # the note on the renamed ids
  assert '1 video file(s) directly in' in out and 'stray.avi' in out

  builder = tfds.builder('video_folder/names', data_dir=str(tmp_path / 'tfds'))
  assert builder.info.features['label'].names == ['a', 'c']  # no label for b_empty
  train = read_split(builder, 'train')
  assert {k: int(ex['label']) for k, ex in train.items()} == {
    'a/clip.avi': 0,
    'a/clip.mp4': 0,
    'c/my clip 01': 1,
  }
  rows = report_rows(builder)
  assert [(r['split'], r['video_id'], r['reason']) for r in rows] == [
    ('train', 'c/broken', 'unreadable')
  ]
  summary = builder.info.metadata['build_summary']
  assert any('b_empty' in note for note in summary['notes'])


def test_folder_split_lists_with_spaces_repeats_and_missing(tmp_path):
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  videos = make_folder(tmp_path)
  splits = tmp_path / 'splits'
  splits.mkdir()
  (splits / 'train.txt').write_text(
    'a/clip.avi 0\nc/my clip 01.avi 1\nc/my clip 01.avi 1\nc/broken.avi\n'
  )
  (splits / 'test.txt').write_text('a/clip.mp4\nc/not here.avi 1\nb_empty/gone.avi\n')
  builder = video_files.VideoFolder(
    config=video_files.VideoFilesConfig(name='lists'),
    data_dir=str(tmp_path / 'tfds'),
    videos_dir=str(videos),
    annotations_dir=str(splits),
    decode_options=OPTIONS,
    num_workers=1,
  )
  builder.download_and_prepare()
  assert builder.info.features['label'].names == ['a', 'c']
  train, test = read_split(builder, 'train'), read_split(builder, 'test')
  assert {k: int(ex['label']) for k, ex in train.items()} == {'a/clip': 0, 'c/my clip 01': 1}
  assert sorted(test) == ['a/clip']  # the .mp4: another split, so its own id
  reasons = {(r['split'], r['video_id']): r['reason'] for r in report_rows(builder)}
  assert reasons == {
    ('train', 'c/my clip 01'): 'duplicate',
    ('train', 'c/broken'): 'unreadable',
    ('test', 'c/not here'): 'missing',
    ('test', 'b_empty/gone'): 'missing',
  }
  splits_summary = builder.build_summary['splits']
  assert splits_summary['train'] == {
    'listed': 4,
    'written': 2,
    'bad': {'duplicate': 1, 'unreadable': 1},
    'expected': None,
  }
  assert splits_summary['test']['listed'] == 3 and splits_summary['test']['written'] == 1


def test_same_file_listed_twice_and_clashing_ids_never_abort(tmp_path):
  listing = video_folder.SourceListing(
    class_names=['a', 'b'],
    tasks={
      'train': [
        decode.VideoTask(str(tmp_path / 'a' / 'x.avi'), 'x', 0),
        decode.VideoTask(str(tmp_path / 'a' / 'x.avi'), 'x', 0),  # listed twice
        decode.VideoTask(str(tmp_path / 'b' / 'x.avi'), 'x', 1),  # same name, other class
        decode.VideoTask(str(tmp_path / 'a' / 'x.avi.mp4'), 'a/x.avi', 0),  # clash after rename
      ]
    },
  )
  video_folder.make_ids_unique(listing, str(tmp_path))
  assert [t.video_id for t in listing.tasks['train']] == ['a/x.avi', 'b/x.avi']
  assert [(b.video_id, b.reason) for b in listing.duplicates['train']] == [
    ('x', 'duplicate'),
    ('a/x.avi', 'duplicate'),
  ]
  assert listing.listed('train') == 4


def test_ucf101_and_hmdb51_lists_with_spaces(tmp_path):
  ucf, lists = tmp_path / 'UCF-101', tmp_path / 'ucfTrainTestlist'
  lists.mkdir()
  (lists / 'classInd.txt').write_text('1 Apply Eye Makeup\r\n2 YoYo\r\n')
  write_zero_length(ucf / 'Apply Eye Makeup' / 'v_Apply Eye Makeup_g01_c01.avi')
  write_zero_length(ucf / 'YoYo' / 'v_YoYo_g01_c01 (copy).avi')
  (lists / 'trainlist01.txt').write_text(
    'Apply Eye Makeup/v_Apply Eye Makeup_g01_c01.avi 1\r\nYoYo/v_YoYo_g01_c01 (copy).avi 2\r\n'
  )
  (lists / 'testlist01.txt').write_text('YoYo/v_YoYo_g02_c01 (copy).avi\r\n')
  listing = ucf101_lib.list_ucf101(str(ucf), str(lists), 1)
  assert listing.class_names == ['Apply Eye Makeup', 'YoYo']
  assert [(t.video_id, t.label) for t in listing.tasks['train']] == [
    ('v_Apply Eye Makeup_g01_c01', 0),
    ('v_YoYo_g01_c01 (copy)', 1),
  ]
  assert [b.video_id for b in listing.missing['test']] == ['v_YoYo_g02_c01 (copy)']

  hmdb, hmdb_lists = tmp_path / 'hmdb51', tmp_path / 'testTrainMulti_7030_splits'
  hmdb_lists.mkdir()
  write_zero_length(hmdb / 'wave' / 'my wave clip.avi')
  (hmdb_lists / 'wave_test_split1.txt').write_text('my wave clip.avi 1 \nother clip.avi 2 \n')
  listing = hmdb51_lib.list_hmdb51(str(hmdb), str(hmdb_lists), 1)
  assert [t.video_id for t in listing.tasks['train']] == ['my wave clip']
  assert [b.video_id for b in listing.missing['test']] == ['other clip']
  (hmdb_lists / 'wave_test_split1.txt').write_text('my wave clip.avi\n')
  with pytest.raises(ValueError, match='expected "<video> <0|1|2>"'):
    hmdb51_lib.list_hmdb51(str(hmdb), str(hmdb_lists), 1)

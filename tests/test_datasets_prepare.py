"""Tests of `jaxvssl prepare`: real-video layouts -> TFDS data sets.

Every video is written here with PyAV: 64x48 pixels, 20 frames at 10 fps
(two motion windows), stored at short side 32 -> 42x32 frames.
"""

from __future__ import annotations

import json
import pathlib

import av
import cv2
import numpy as np
import pytest

from jaxvssl.datasets import decode
from jaxvssl.datasets.builders import hmdb51 as hmdb51_lib
from jaxvssl.datasets.builders import kinetics as kinetics_lib
from jaxvssl.datasets.builders import ucf101 as ucf101_lib
from jaxvssl.datasets.builders import video_folder

WIDTH, HEIGHT, FPS, NUM_FRAMES = 64, 48, 10, 20
SHORT_SIDE = 32
OPTIONS = decode.DecodeOptions(short_side=SHORT_SIDE, min_frames=16)


# --- Tiny videos ----------------------------------------------------------------


def textured_background(seed: int) -> np.ndarray:
  """uint8 [H, W, 3] smooth random texture (gives optical flow something to track)."""
  rng = np.random.default_rng(seed)
  coarse = rng.integers(0, 160, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
  return np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)


def moving_frames(num_frames: int = NUM_FRAMES, seed: int = 0) -> np.ndarray:
  """A bright 12x12 square crossing a textured background: [T, H, W, 3]."""
  background = textured_background(seed)
  frames = np.repeat(background[None], num_frames, axis=0)
  for t in range(num_frames):
    x = 4 + 2 * t
    frames[t, 18:30, x : x + 12] = 255
  return frames


def static_frames(num_frames: int = NUM_FRAMES, seed: int = 0) -> np.ndarray:
  """The first frame of ``moving_frames`` repeated: no motion at all."""
  return np.repeat(moving_frames(1, seed), num_frames, axis=0)


def write_video(
  path: pathlib.Path, frames: np.ndarray, fps: int = FPS, codec: str = 'mpeg4'
) -> pathlib.Path:
  """Writes uint8 RGB frames [T, H, W, 3] with PyAV (container from the suffix)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = 'yuv420p'
    stream.options = {'qscale': '2'} if codec == 'mpeg4' else {}
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def write_corrupt(path: pathlib.Path) -> pathlib.Path:
  """A file with a video name and no video in it."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b'RIFF\x00\x00\x00\x00AVI LIST' + bytes(range(256)) * 4)
  return path


def write_zero_length(path: pathlib.Path) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b'')
  return path


def write_truncated(path: pathlib.Path, fraction: float = 0.8) -> pathlib.Path:
  """A valid AVI cut short: the header still announces every frame."""
  write_video(path, moving_frames(40))
  data = path.read_bytes()
  path.write_bytes(data[: int(len(data) * fraction)])
  return path


# --- Unit: sizes, frame selection, single videos --------------------------------


def test_output_size_keeps_aspect_with_even_sides():
  assert decode.output_size(64, 48, 32) == (42, 32)  # 42.67 -> nearest even
  assert decode.output_size(320, 240, 128) == (170, 128)
  assert decode.output_size(48, 64, 32) == (32, 42)  # portrait
  assert decode.output_size(400, 226, 128) == (226, 128)  # 226.5 -> 226
  with pytest.raises(ValueError, match='even'):
    decode.DecodeOptions(short_side=33)


def test_subsample_indices():
  np.testing.assert_array_equal(decode.subsample_indices(6, 30, 15), [0, 2, 4])
  np.testing.assert_array_equal(decode.subsample_indices(5, 25, 10), [0, 3])
  np.testing.assert_array_equal(decode.subsample_indices(4, 10, None), [0, 1, 2, 3])
  np.testing.assert_array_equal(decode.subsample_indices(4, 10, 30), [0, 1, 2, 3])
  assert len(decode.subsample_indices(300, 29.97, 10)) == 100  # floor(299 * 10 / 29.97) + 1


def test_decode_resizes_keeps_frames_and_fps(tmp_path):
  path = write_video(tmp_path / 'clip.avi', moving_frames())
  frames, fps = decode.decode_frames(str(path), OPTIONS)
  assert frames.shape == (NUM_FRAMES, 32, 42, 3) and frames.dtype == np.uint8
  assert fps == pytest.approx(FPS)
  # Same picture as the source shrunk with an area filter, up to codec loss
  # (compared in luma: 4:2:0 chroma blurs the 8-pixel colour blocks).
  expected = [cv2.resize(f, (42, 32), interpolation=cv2.INTER_AREA) for f in moving_frames()]
  luma = lambda images: np.stack([cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in images]).astype(
    float
  )
  assert np.abs(luma(frames) - luma(expected)).mean() < 5

  half, half_fps = decode.decode_frames(
    str(path), decode.DecodeOptions(short_side=SHORT_SIDE, target_fps=5, min_frames=4)
  )
  assert half.shape[0] == NUM_FRAMES // 2 and half_fps == pytest.approx(5)
  np.testing.assert_allclose(half.astype(float), frames[::2].astype(float), atol=1)

  portrait = write_video(
    tmp_path / 'portrait.mp4',
    np.ascontiguousarray(moving_frames().transpose(0, 2, 1, 3)),
    codec='libx264',
  )
  frames, _ = decode.decode_frames(str(portrait), OPTIONS)
  assert frames.shape == (NUM_FRAMES, 42, 32, 3)


def test_decode_reports_bad_videos_by_reason(tmp_path):
  cases = {
    'missing': tmp_path / 'absent.avi',
    'empty_file': write_zero_length(tmp_path / 'zero.avi'),
    'unreadable': write_corrupt(tmp_path / 'corrupt.avi'),
    'truncated': write_truncated(tmp_path / 'cut.avi'),
    'too_short': write_video(tmp_path / 'short.avi', moving_frames(8)),
  }
  for reason, path in cases.items():
    task = decode.VideoTask(path=str(path), video_id=path.stem, label=0)
    _, result = decode.process(task, OPTIONS)
    assert isinstance(result, decode.BadVideo), reason
    assert result.reason == reason, (reason, result)
    assert result.path == str(path)


def test_example_features_and_motion_scores(tmp_path):
  moving = decode.make_example(
    decode.VideoTask(str(write_video(tmp_path / 'moving.avi', moving_frames())), 'm', 1), OPTIONS
  )
  static = decode.make_example(
    decode.VideoTask(str(write_video(tmp_path / 'static.avi', static_frames())), 's', 0), OPTIONS
  )
  assert moving['num_frames'] == NUM_FRAMES and len(moving['video']) == NUM_FRAMES
  assert moving['video'][0][:2] == b'\xff\xd8'  # JPEG start-of-image marker
  assert moving['label'] == 1 and moving['video_id'] == 'm'
  assert moving['motion_scores'].shape == (NUM_FRAMES // FPS,)
  assert moving['motion_scores'].dtype == np.float32
  assert moving['motion_scores'].min() > 5 * max(static['motion_scores'].max(), 1e-3)


# --- Data set layouts ---------------------------------------------------------------

UCF_CLASSES = ('ApplyEyeMakeup', 'HandstandPushups', 'YoYo')


def ucf_file_class(name: str) -> str:
  # The official release names these files v_HandStandPushups_* (capital S).
  return 'HandStandPushups' if name == 'HandstandPushups' else name


def make_ucf101(root: pathlib.Path) -> dict[str, object]:
  """UCF101 layout: 3 classes x groups g01-g03, split 1 lists, and bad files.

  Train = groups 2, 3; test = group 1. Bad: a corrupt and a zero-length train
  video, a too-short test video, and a listed but absent train video.
  """
  videos, lists = root / 'UCF-101', root / 'ucfTrainTestlist'
  lists.mkdir(parents=True)
  (lists / 'classInd.txt').write_text(''.join(f'{i} {c}\r\n' for i, c in enumerate(UCF_CLASSES, 1)))
  train, test = [], []
  for label, cls in enumerate(UCF_CLASSES):
    for group in (1, 2, 3):
      rel = f'{cls}/v_{ucf_file_class(cls)}_g{group:02d}_c01.avi'
      frames = moving_frames(seed=label) if label != 0 else static_frames(seed=label)
      write_video(videos / rel, frames)
      (test if group == 1 else train).append(rel)
  write_corrupt(videos / 'YoYo/v_YoYo_g04_c01.avi')
  write_zero_length(videos / 'YoYo/v_YoYo_g05_c01.avi')
  write_video(videos / 'ApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi', moving_frames(8))
  train += [
    'YoYo/v_YoYo_g04_c01.avi',
    'YoYo/v_YoYo_g05_c01.avi',
    'YoYo/v_YoYo_g06_c01.avi',
  ]  # g06 is not on disk
  test += ['ApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi']
  label_of = {c: i + 1 for i, c in enumerate(UCF_CLASSES)}
  (lists / 'trainlist01.txt').write_text(
    ''.join(f'{r} {label_of[r.split("/")[0]]}\r\n' for r in train)
  )
  (lists / 'testlist01.txt').write_text(''.join(f'{r}\r\n' for r in test))
  return {'videos_dir': videos, 'annotations_dir': lists}


HMDB_CLASSES = ('brush_hair', 'cartwheel', 'wave')


def make_hmdb51(root: pathlib.Path) -> dict[str, object]:
  """HMDB51 layout: 3 classes x 4 videos; split 1: 2 train, 1 test, 1 unused."""
  videos, lists = root / 'hmdb51', root / 'testTrainMulti_7030_splits'
  lists.mkdir(parents=True)
  for label, cls in enumerate(HMDB_CLASSES):
    lines = []
    for i, split_id in enumerate((1, 2, 1, 0)):
      name = f'{cls}_clip_{i}_f_nm_np1_fr_goo_{i}.avi'
      write_video(videos / cls / name, moving_frames(seed=10 * label + i))
      lines.append(f'{name} {split_id} \n')
    if cls == 'wave':
      write_video(videos / cls / 'wave_short.avi', moving_frames(8))
      lines.append('wave_short.avi 2 \n')
    for k in (1, 2, 3):
      (lists / f'{cls}_test_split{k}.txt').write_text(''.join(lines))
  return {'videos_dir': videos, 'annotations_dir': lists}


def read_split(builder, split: str) -> dict[str, dict[str, object]]:
  """video_id -> numpy example, with 'video' read as JPEG bytes (SkipDecoding)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  ds = builder.as_dataset(split, decoders={'video': tfds.decode.SkipDecoding()})
  return {ex['video_id'].decode(): ex for ex in tfds.as_numpy(ds)}


@pytest.fixture(scope='module')
def ucf101_built(tmp_path_factory):
  """UCF101 split 1 built locally on a 2-process pool: (sources, data_dir, builder)."""
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp('ucf101')
  sources = make_ucf101(root / 'src')
  builder = video_files.Ucf101(
    config='split1',
    data_dir=str(root / 'tfds'),
    decode_options=OPTIONS,
    num_workers=2,
    **{k: str(v) for k, v in sources.items()},
  )
  builder.download_and_prepare()
  return sources, root / 'tfds', builder


def test_ucf101_labels_splits_frames_and_motion(ucf101_built):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  _, data_dir, _ = ucf101_built
  # The configs name the data set 'ucf101/split1': the registry must give ours.
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  builder = tfds.builder('ucf101/split1', data_dir=str(data_dir))
  assert isinstance(builder, video_files.Ucf101)  # not TFDS's own web 'ucf101'
  assert builder.info.features['label'].names == list(UCF_CLASSES)
  train, test = read_split(builder, 'train'), read_split(builder, 'test')
  assert sorted(train) == sorted(
    f'v_{ucf_file_class(c)}_g{g:02d}_c01' for c in UCF_CLASSES for g in (2, 3)
  )
  assert sorted(test) == sorted(f'v_{ucf_file_class(c)}_g01_c01' for c in UCF_CLASSES)
  for video_id, ex in {**train, **test}.items():
    # 0-based classInd order; 'v_HandStandPushups_*' files -> 'HandstandPushups'.
    expected_class = next(c for c in UCF_CLASSES if ucf_file_class(c) in video_id)
    assert ex['label'] == UCF_CLASSES.index(expected_class), video_id
    assert ex['video'].dtype == object and ex['video'].shape == (NUM_FRAMES,)
    assert ex['num_frames'] == NUM_FRAMES and ex['fps'] == pytest.approx(FPS)
    assert tf.io.decode_jpeg(ex['video'][0]).shape == (32, 42, 3)
    assert ex['motion_scores'].shape == (2,)
  static = train['v_ApplyEyeMakeup_g02_c01']['motion_scores']
  moving = train['v_YoYo_g02_c01']['motion_scores']
  assert moving.min() > 5 * static.max()


def test_ucf101_bad_videos_reported_and_counted(ucf101_built):
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  _, _, builder = ucf101_built
  report = json.loads((builder.data_path / video_files.REPORT_JSON).read_text())
  reasons = {(row['split'], row['video_id']): row['reason'] for row in report['videos']}
  assert reasons == {
    ('train', 'v_YoYo_g04_c01'): 'unreadable',
    ('train', 'v_YoYo_g05_c01'): 'empty_file',
    ('train', 'v_YoYo_g06_c01'): 'missing',
    ('test', 'v_ApplyEyeMakeup_g04_c01'): 'too_short',
  }
  tsv = (builder.data_path / video_files.REPORT_TSV).read_text().splitlines()
  assert tsv[0].split('\t') == ['split', 'path', 'video_id', 'reason', 'detail']
  assert len(tsv) == 5 and any('v_YoYo_g05_c01.avi' in line for line in tsv)
  summary = builder.build_summary
  assert summary['splits']['train'] == {
    'listed': 9,
    'written': 6,
    'expected': 9537,
    'bad': {'empty_file': 1, 'missing': 1, 'unreadable': 1},
  }
  assert summary['splits']['test']['bad'] == {'too_short': 1}
  text = video_files.format_summary(summary)
  assert 'WARNING: ucf101/split1 train: 6 videos written, the official split has 9,537' in text


def test_prepare_cli_hmdb51(tmp_path, capsys):
  from jaxvssl.datasets.prepare import prepare_main  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  sources = make_hmdb51(tmp_path / 'src')
  argv = [
    'hmdb51',
    '--videos_dir',
    str(sources['videos_dir']),
    '--split',
    '2',
    '--data_dir',
    str(tmp_path / 'tfds'),
    '--short_side',
    str(SHORT_SIDE),
    '--num_workers',
    '1',
    '--jpeg_quality',
    '80',
  ]
  assert prepare_main(argv) == 0  # split files found beside the videos
  out = capsys.readouterr().out
  assert 'hmdb51/split2: 3 classes' in out and 'bad 1 (too_short 1)' in out
  builder = tfds.builder('hmdb51/split2', data_dir=str(tmp_path / 'tfds'))
  train, test = read_split(builder, 'train'), read_split(builder, 'test')
  # Per class: clips 0 and 2 train (id 1), clip 1 test (id 2), clip 3 unused (id 0).
  assert sorted(train) == sorted(
    f'{c}_clip_{i}_f_nm_np1_fr_goo_{i}' for c in HMDB_CLASSES for i in (0, 2)
  )
  assert sorted(test) == sorted(f'{c}_clip_1_f_nm_np1_fr_goo_1' for c in HMDB_CLASSES)
  for video_id, ex in {**train, **test}.items():
    assert ex['label'] == HMDB_CLASSES.index(video_id.split('_clip_')[0])
  assert builder.info.metadata['decode_options']['jpeg_quality'] == 80
  # A second run reuses the data set instead of rebuilding it.
  assert prepare_main(argv) == 0
  assert 'already prepared' in capsys.readouterr().out


def test_missing_split_file_is_an_error_naming_it(tmp_path, capsys):
  from jaxvssl.datasets.prepare import prepare_main  # pylint: disable=g-import-not-at-top

  sources = make_ucf101(tmp_path / 'src')
  with pytest.raises(FileNotFoundError, match='trainlist02.txt'):
    ucf101_lib.list_ucf101(str(sources['videos_dir']), str(sources['annotations_dir']), 2)
  (sources['annotations_dir'] / 'testlist01.txt').unlink()
  argv = [
    'ucf101',
    '--videos_dir',
    str(sources['videos_dir']),
    '--data_dir',
    str(tmp_path / 'tfds'),
  ]
  assert prepare_main(argv) == 2
  assert str(sources['annotations_dir'] / 'testlist01.txt') in capsys.readouterr().err
  with pytest.raises(FileNotFoundError, match='HMDB51 split files not found'):
    hmdb51_lib.list_hmdb51(str(sources['videos_dir']), None, 1)


def test_empty_or_absent_videos_dir_is_an_error(tmp_path):
  (tmp_path / 'empty' / 'some_class').mkdir(parents=True)
  with pytest.raises(ValueError, match='no video files'):
    video_folder.list_folder(str(tmp_path / 'empty'))
  with pytest.raises(FileNotFoundError, match='videos directory not found'):
    video_folder.list_folder(str(tmp_path / 'absent'))
  with pytest.raises(FileNotFoundError, match=f'videos directory not found: {tmp_path}/absent'):
    ucf101_lib.list_ucf101(str(tmp_path / 'absent'), None, 1)


def test_kinetics_listing(tmp_path):
  videos, annotations = tmp_path / 'clips', tmp_path / 'annotations'
  annotations.mkdir()
  header = 'label,youtube_id,time_start,time_end,split,is_cc\n'
  (annotations / 'train.csv').write_text(
    header + 'riding a bike,aaa,10,20,train,0\n'
    'abseiling,bbb,0,10,train,0\n'
    'abseiling,ccc,5,15,train,0\n'
  )  # ccc is not on disk
  (annotations / 'validate.csv').write_text(header + 'riding a bike,ddd,1.0,11.0,val,0\n')
  (annotations / 'test.csv').write_text(
    'youtube_id,time_start,time_end,split\neee,0,10,test\n'
  )  # unlabelled
  write_zero_length(videos / 'train' / 'riding a bike' / 'aaa_000010_000020.mp4')
  write_zero_length(videos / 'train' / 'abseiling' / 'bbb_000000_000010.mp4')
  write_zero_length(videos / 'val' / 'ddd.mp4')  # named by YouTube id only
  listing = kinetics_lib.list_kinetics(str(videos), str(annotations), '400')
  assert listing.class_names == ['abseiling', 'riding a bike']
  assert sorted(listing.tasks) == ['train', 'validation']
  assert [(t.video_id, t.label) for t in listing.tasks['train']] == [
    ('aaa_000010_000020', 1),
    ('bbb_000000_000010', 0),
  ]
  assert [t.video_id for t in listing.missing['train']] == ['ccc_000005_000015']
  assert listing.tasks['validation'][0].path.endswith('ddd.mp4')
  assert any('test.csv has no labels' in note for note in listing.notes)
  with pytest.raises(FileNotFoundError, match='train.csv'):
    kinetics_lib.list_kinetics(str(videos), str(videos), '400')


def test_folder_listing_with_and_without_split_files(tmp_path):
  for cls in ('b_class', 'a_class'):
    for i in range(2):
      write_zero_length(tmp_path / 'videos' / cls / f'clip{i}.mp4')
  listing = video_folder.list_folder(str(tmp_path / 'videos'))
  assert listing.class_names == ['a_class', 'b_class']
  assert [(t.video_id, t.label) for t in listing.tasks['train']] == [
    ('a_class/clip0', 0),
    ('a_class/clip1', 0),
    ('b_class/clip0', 1),
    ('b_class/clip1', 1),
  ]
  splits = tmp_path / 'splits'
  splits.mkdir()
  (splits / 'train.txt').write_text('a_class/clip0.mp4\nb_class/clip0.mp4 1\n')
  (splits / 'test.txt').write_text('a_class/clip1.mp4\nb_class/clip9.mp4\n')
  listing = video_folder.list_folder(str(tmp_path / 'videos'), str(splits))
  assert [t.video_id for t in listing.tasks['train']] == ['a_class/clip0', 'b_class/clip0']
  assert [t.video_id for t in listing.tasks['test']] == ['a_class/clip1']
  assert [b.video_id for b in listing.missing['test']] == ['b_class/clip9']


@pytest.mark.slow  # ~20 s, mostly importing apache_beam
def test_beam_build_equals_local_build(ucf101_built, tmp_path):
  pytest.importorskip('apache_beam')
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  sources, _, local = ucf101_built
  beam_builder = video_files.Ucf101(
    config='split1',
    data_dir=str(tmp_path / 'tfds_beam'),
    decode_options=OPTIONS,
    use_beam=True,
    **{k: str(v) for k, v in sources.items()},
  )
  beam_builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(
      beam_options=pipeline_options.PipelineOptions(['--runner=DirectRunner'])
    )
  )
  for split in ('train', 'test'):
    a, b = read_split(local, split), read_split(beam_builder, split)
    assert list(a) == list(b)  # same examples in the same (key-hash) order
    for video_id in a:
      for key in a[video_id]:
        np.testing.assert_array_equal(a[video_id][key], b[video_id][key])
  for name in (video_files.REPORT_JSON, video_files.REPORT_TSV):
    assert (local.data_path / name).read_text() == (beam_builder.data_path / name).read_text()
  assert local.build_summary == beam_builder.build_summary


def test_prepare_exported_synthetic_ucf101_and_hmdb51(tmp_path, capsys):
  """The shared exporter's layouts (synthetic_motion videos) build end to end."""
  import itertools  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxvssl.datasets import export_videos  # pylint: disable=g-import-not-at-top
  from jaxvssl.datasets.prepare import prepare_main  # pylint: disable=g-import-not-at-top

  examples = list(export_videos.synthetic_examples('tiny', num_train=16, num_test=16))
  ucf = export_videos.export_ucf101(
    str(tmp_path / 'ucf'), examples, broken=export_videos.BROKEN_KINDS
  )
  # HMDB: the second half of the train videos is 'unused' in this split.
  hmdb_examples = [
    ('unused' if split == 'train' and i % 2 else split, ex)
    for i, (split, ex) in enumerate(examples)
  ]
  hmdb = export_videos.export_hmdb51(
    str(tmp_path / 'hmdb'), hmdb_examples, broken=export_videos.BROKEN_KINDS
  )
  common = ['--data_dir', str(tmp_path / 'tfds'), '--short_side', '32', '--num_workers', '1']
  assert prepare_main(['ucf101', '--videos_dir', str(tmp_path / 'ucf' / 'UCF-101')] + common) == 0
  assert (
    prepare_main(
      [
        'hmdb51',
        '--videos_dir',
        str(tmp_path / 'hmdb' / 'videos'),
        '--annotations_dir',
        str(tmp_path / 'hmdb' / 'splits'),
      ]
      + common
    )
    == 0
  )
  out = capsys.readouterr().out
  assert out.count('bad 3 (empty_file 1, too_short 1, unreadable 1)') == 2
  for name, result in (('ucf101/split1', ucf), ('hmdb51/split1', hmdb)):
    builder = tfds.builder(name, data_dir=str(tmp_path / 'tfds'))
    names = builder.info.features['label'].names
    assert names == result.class_names
    expected = {
      (rel.rsplit('/', 1)[1].rsplit('.', 1)[0], rel.split('/')[0])
      for rel, split in result.videos
      if split == 'test'
    }
    test = read_split(builder, 'test')
    assert {(video_id, names[ex['label']]) for video_id, ex in test.items()} == expected
    ex = next(itertools.islice(test.values(), 1))
    assert ex['num_frames'] == 16 and ex['motion_scores'].shape == (1,)

"""Tests of jaxvssl.datasets.export_videos (video files in the UCF101 / HMDB51 layouts)."""

import os
import re

import av
import numpy as np
import pytest

from jaxvssl.datasets import export_videos
from jaxvssl.datasets import synthetic

CFG = synthetic.SyntheticConfig(num_frames=8, height=32, width=32, fps=8.0)


def _examples(num_train_per_class=3, num_test_per_class=2, classes=(0, 1, 15)):
  """(split, example) pairs: a few classes with a few videos each."""
  out = []
  for split, n in (('train', num_train_per_class), ('test', num_test_per_class)):
    for c in classes:
      for k in range(n):
        # Index k * 16 + c has label c (round robin).
        out.append((split, synthetic.generate_example(CFG, split, k * 16 + c, motion_top_k=1)))
  return out


# Split-file readers written independently of the builders' (jaxvssl.datasets.builders), so the
# exported layouts are checked against the file formats, not against the code that reads them.


def read_ucf101_lists(
  root: str, split_number: int = 1
) -> tuple[dict[int, str], list[tuple[str, int]], list[str]]:
  """(classInd id -> name, [(train path, id)], [test path]) of a UCF101 root."""
  lists = os.path.join(root, 'ucfTrainTestlist')

  def lines(name: str) -> list[str]:
    with open(os.path.join(lists, name)) as f:
      return [line.strip() for line in f if line.strip()]

  class_ind = {int(i): n for i, n in (line.split(' ') for line in lines('classInd.txt'))}
  train = [
    (p, int(i)) for p, i in (line.split(' ') for line in lines(f'trainlist{split_number:02d}.txt'))
  ]
  test = lines(f'testlist{split_number:02d}.txt')
  return class_ind, train, test


def read_hmdb51_split(root: str, class_name: str, split_number: int = 1) -> list[tuple[str, int]]:
  """[(video name, 0/1/2)] of one HMDB51 split file."""
  path = os.path.join(root, 'splits', f'{class_name}_test_split{split_number}.txt')
  with open(path) as f:
    return [(name, int(i)) for name, i in (line.split() for line in f if line.strip())]


@pytest.mark.parametrize('extension', ['.avi', '.mp4'])
def test_write_read_roundtrip(tmp_path, extension):
  video = synthetic.render_video('orbit_cw', 0, CFG)
  path = export_videos.write_video(str(tmp_path / f'v{extension}'), video, fps=8.0)
  decoded, fps = export_videos.read_video(path)
  assert decoded.shape == video.shape and decoded.dtype == np.uint8
  assert fps == pytest.approx(8.0)
  assert np.abs(decoded.astype(int) - video).mean() < 12  # lossy, but the same video


def test_write_rejects_odd_size(tmp_path):
  with pytest.raises(ValueError, match='even'):
    export_videos.write_video(str(tmp_path / 'odd.avi'), np.zeros((2, 31, 32, 3), np.uint8), 8.0)


def test_ucf101_layout(tmp_path):
  examples = _examples()
  result = export_videos.export_ucf101(
    str(tmp_path), examples, broken=('corrupt', 'empty', 'short')
  )
  class_ind, train, test = read_ucf101_lists(str(tmp_path))
  # classInd: "1 ClassName", 1-based, alphabetical; CamelCase names.
  assert class_ind == {1: 'MoveLeft', 2: 'MoveRight', 3: 'StaticFlicker'}
  with open(tmp_path / 'ucfTrainTestlist' / 'classInd.txt', newline='') as f:
    assert f.readline() == '1 MoveLeft\r\n'  # official files use CRLF
  pattern = re.compile(r'^([A-Za-z]+)/v_\1_g(\d\d)_c(\d\d)\.avi$')
  groups = {'train': set(), 'test': set()}
  for path, label in train:
    m = pattern.match(path)
    assert m and class_ind[label] == m.group(1)
    groups['train'].add((m.group(1), m.group(2)))
  for path in test:
    m = pattern.match(path)
    assert m and ' ' not in path  # test lines carry no label
    groups['test'].add((m.group(1), m.group(2)))
  assert not groups['train'] & groups['test']  # no group in both splits
  assert len(train) == 3 * 3 + 3 and len(test) == 3 * 2
  # Every regular video decodes to the right frame count and size.
  for rel, _ in result.videos:
    frames, fps = export_videos.read_video(str(tmp_path / 'UCF-101' / rel))
    assert frames.shape == (8, 32, 32, 3) and fps == pytest.approx(8.0)
  # Broken entries are listed in the train split.
  listed = {p for p, _ in train}
  assert set(result.broken.values()) <= listed
  video_dir = tmp_path / 'UCF-101'
  assert os.path.getsize(video_dir / result.broken['empty']) == 0
  with pytest.raises(av.error.FFmpegError):
    export_videos.read_video(str(video_dir / result.broken['corrupt']))
  assert export_videos.read_video(str(video_dir / result.broken['short']))[0].shape == (
    2,
    32,
    32,
    3,
  )


def test_hmdb51_layout(tmp_path):
  examples = _examples(num_train_per_class=2, num_test_per_class=1, classes=(6, 7))
  examples.append(('unused', synthetic.generate_example(CFG, 'train', 6 + 16 * 5)))
  result = export_videos.export_hmdb51(str(tmp_path), examples, broken=('short',))
  assert result.class_names == ['grow', 'shrink']
  grow = read_hmdb51_split(str(tmp_path), 'grow')
  assert sorted(i for _, i in grow) == [0, 1, 1, 1, 2]  # 2 train + short, 1 test, 1 unused
  with open(tmp_path / 'splits' / 'grow_test_split1.txt') as f:
    first = f.readline()
  assert re.fullmatch(r'[\w\-]+\.avi [012] \n', first)  # official: trailing space
  for name, _ in grow:
    frames, _ = export_videos.read_video(str(tmp_path / 'videos' / 'grow' / name))
    assert frames.shape[1:] == (32, 32, 3)
    assert frames.shape[0] == (2 if name.startswith('broken_short') else 8)
  shrink = read_hmdb51_split(str(tmp_path), 'shrink')
  assert sorted(i for _, i in shrink) == [1, 1, 2]


def test_export_synthetic(tmp_path):
  result = export_videos.export_synthetic(str(tmp_path), 'hmdb51', 'tiny', num_train=16, num_test=0)
  assert len(result.videos) == 16 and len(result.class_names) == 16
  assert read_hmdb51_split(str(tmp_path), 'orbit_cw') == [('synthetic_motion_train_000010.avi', 1)]
  with pytest.raises(ValueError, match='unknown overrides'):
    export_videos.export_synthetic(str(tmp_path), 'hmdb51', 'tiny', frames=3)


def test_export_main_cli(tmp_path, capsys):
  assert (
    export_videos.export_main(
      [
        '--root',
        str(tmp_path),
        '--layout',
        'ucf101',
        '--config',
        'tiny',
        '--num_train',
        '16',
        '--num_test',
        '16',
        '--broken',
        'empty',
      ]
    )
    == 0
  )
  assert 'wrote 32 videos' in capsys.readouterr().out
  class_ind, train, test = read_ucf101_lists(str(tmp_path))
  assert len(class_ind) == 16
  assert len(train) == 17 and len(test) == 16
  frames, _ = export_videos.read_video(str(tmp_path / 'UCF-101' / test[0]))
  assert frames.shape == (16, 32, 32, 3)
  for bad in (['--layout', 'kinetics'], ['--broken', 'missing']):
    with pytest.raises(SystemExit):
      export_videos.export_main(['--root', str(tmp_path)] + bad)

"""Run files on an object store: every path of a run goes through etils.epath, so a `gs://`
workdir (what the hosts of a TPU pod share) works like a local one.

No network: `gs://` is redirected to a local directory with etils' own `epath.testing.mock_epath`
(with `EPATH_USE_TF=false`, so epath does not hand `gs://` to TensorFlow's gfile). A module that
bypassed epath (`open`, `os.makedirs`, `os.path.abspath`) would write under `<cwd>/gs:/...`
instead, which each test checks never appears. Orbax's array writes go through TensorStore, not
epath, so checkpoints are covered by the path-string check only.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from etils import epath
from etils.epath import gpath as epath_gpath
from etils.epath import testing as epath_testing

from jaxvssl import checkpointing, metrics, workdir
from jaxvssl import config as config_lib
from jaxvssl.evaluation import features, plots, reports, retrieval
from tests.helpers import tiny_config

PREFIX = 'gs://'


@pytest.fixture
def gcs(tmp_path, monkeypatch):
  """`gs://bucket/...` backed by `tmp_path/store/bucket/...`; the test runs in `tmp_path/cwd`."""
  store = tmp_path / 'store'
  store.mkdir()
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  monkeypatch.setenv('EPATH_USE_TF', 'false')
  # epath reads EPATH_USE_TF once and caches the answer (`gpath._is_tf_installed`): a gs:// path
  # touched earlier in the same process (another test) would keep TensorFlow's gfile, which goes
  # to the network. Patch the cached answer too.
  monkeypatch.setattr(epath_gpath, '_is_tf_installed', lambda: False)

  def local(path):  # the mock serves local paths too (and calls itself with mapped ones)
    s = os.fspath(path)
    return os.path.join(store, s[len(PREFIX) :]) if s.startswith(PREFIX) else s

  def remote(path):
    s = os.fspath(path)
    return PREFIX + os.path.relpath(s, store) if s.startswith(os.fspath(store)) else s

  def mapped(original, path, *args, **kwargs):
    return original(local(path), *args, **kwargs)

  def two(original, path, dst, *args, **kwargs):
    return original(local(path), local(dst), *args, **kwargs)

  def walk(original, path, **kwargs):
    for root, dirs, files in original(local(path), **kwargs):
      yield remote(root), dirs, files

  def glob(original, path):
    return [remote(p) for p in original(local(path))]

  names = ('exists', 'isdir', 'listdir', 'makedirs', 'mkdir', 'open', 'remove', 'rmtree', 'stat')
  mocks = {name: mapped for name in names}
  with epath_testing.mock_epath(**mocks, rename=two, replace=two, copy=two, walk=walk, glob=glob):
    yield store
  assert not (cwd / 'gs:').exists(), 'a gs:// path was written as a local relative path'


def test_local_paths_become_absolute_and_uris_stay_as_they_are(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert os.fspath(workdir.resolve('gs://b/run')) == 'gs://b/run'
  assert os.fspath(workdir.resolve('runs/x')) == os.path.join(tmp_path, 'runs', 'x')
  assert os.fspath(checkpointing.checkpoint_dir('gs://b/run')) == 'gs://b/run/checkpoints'
  assert os.fspath(checkpointing.checkpoint_dir('runs/x')) == str(tmp_path / 'runs/x/checkpoints')
  assert not workdir.is_local('gs://b/run') and workdir.is_local('runs/x')


def test_the_fake_store_catches_a_plain_open(gcs):
  """The guard of the fixture works: a plain `open` of a gs:// path lands in <cwd>/gs:."""
  os.makedirs('gs://bucket', exist_ok=True)
  assert os.path.isdir('gs:')
  os.rmdir('gs:/bucket')
  os.rmdir('gs:')


def test_run_files_on_gs(gcs):
  run = 'gs://bucket/runs/moco'
  workdir.check_writable(run)
  with workdir.lock(run):
    assert 'pid' in (gcs / 'bucket/runs/moco/.lock').read_text()
  assert not [p for p in (gcs / 'bucket/runs/moco').iterdir() if '.write_probe' in p.name]

  config = tiny_config('moco')
  path = config_lib.save_config(config, run)
  assert path == f'{run}/config.json' and (gcs / 'bucket/runs/moco/config.json').exists()
  assert config_lib.config_from_json(path).to_dict() == config.to_dict()

  writer = metrics.JsonlWriter(f'{run}/metrics.jsonl')
  for step in (1, 2, 3):
    writer.write_scalars(step, {'loss': 1.0 / step})
  writer.close()
  metrics.JsonlWriter(f'{run}/metrics.jsonl', resume_step=2).close()  # a resume at step 2
  rows = plots.read_metrics_jsonl(f'{run}/metrics.jsonl')
  assert [r['step'] for r in rows] == [1, 2]
  assert os.fspath(plots.plot_loss_curves([f'{run}/metrics.jsonl'], f'{run}/loss.png')).startswith(
    PREFIX
  )
  assert (gcs / 'bucket/runs/moco/loss.png').stat().st_size > 0


def test_evaluation_outputs_on_gs(gcs):
  out = 'gs://bucket/runs/moco/eval'
  rng = np.random.default_rng(0)
  feats = {
    'features': rng.normal(size=(6, 2, 4)).astype(np.float32),
    'labels': np.array([0, 1, 2, 0, 1, 2], np.int32),
    'video_ids': np.array([f'v{i}' for i in range(6)], dtype=object),
  }
  calls = []
  extract = lambda: calls.append(1) or feats
  first = features.cached_features(f'{out}/features', 'abc', extract)
  again = features.cached_features(f'{out}/features', 'abc', extract)
  assert len(calls) == 1 and (gcs / 'bucket/runs/moco/eval/features/features_abc.npz').exists()
  np.testing.assert_array_equal(first['features'], again['features'])

  metrics_ = retrieval.evaluate_retrieval(feats, feats, f'{out}/retrieval', ks=(1, 5))
  assert metrics_['retrieval/R@1'] == 1.0
  per_query = json.loads(
    (gcs / 'bucket/runs/moco/eval/retrieval/retrieval_per_query.json').read_text()
  )
  assert len(per_query) == 6
  reports.write_results(f'{out}/finetune', {'finetune/clip_top1': 0.5}, protocol='finetune')
  name, merged = reports.collect_run(out)  # found recursively, through epath's walk
  assert name == 'eval' and merged['finetune/clip_top1'] == 0.5 and merged['retrieval/R@1'] == 1
  table = reports.compare([out], 'gs://bucket/reports/table.md')
  assert (gcs / 'bucket/reports/table.md').read_text() == table

  checkpoint = 'gs://bucket/runs/moco/checkpoints/4'
  epath.Path(checkpoint, 'params').mkdir(parents=True)
  epath.Path(checkpoint, 'params', 'a').write_bytes(b'123')
  fingerprint = features.feature_fingerprint(checkpoint, {'num_clips': 2}, 'test')
  epath.Path(checkpoint, 'params', 'a').write_bytes(b'12345')  # a re-saved checkpoint
  assert features.feature_fingerprint(checkpoint, {'num_clips': 2}, 'test') != fingerprint

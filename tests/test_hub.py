"""Weights in and out: `jaxvssl export`, `jaxvssl.hub.load`, and `config.init_from`."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from jaxvssl import cli, hub, methods, parallel, runs
from jaxvssl.errors import PretrainedWeightsError
from jaxvssl.interop import files as weight_files
from jaxvssl.interop import torch as interop_torch
from jaxvssl.methods import base
from tests import helpers


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """A 2-step tiny MoCo run (R3D-10 at 1/16 width) on fake batches."""
  workdir = tmp_path_factory.mktemp('run')
  config = helpers.tiny_config(num_steps=2)
  helpers.run_training(config, workdir, jax.devices()[:1])
  return str(workdir)


def _run_variables(workdir):
  run = runs.load_run(workdir)
  return jax.tree_util.tree_map(np.asarray, run.method.backbone_variables(run.params, run.state))


def _assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize('ext', ['npz', 'msgpack'])
def test_export_then_load_is_bit_exact(tiny_run, tmp_path, ext, capsys):
  out = str(tmp_path / f'backbone.{ext}')
  assert cli.main(['export', f'--workdir={tiny_run}', f'--out={out}']) == 0
  assert f'wrote {out}' in capsys.readouterr().out
  with open(out + '.json') as f:
    meta = json.load(f)
  assert meta['backbone'] == 'r3d10' and meta['width_multiplier'] == 1 / 16
  assert (meta['input_mode'], meta['crop_size'], meta['num_frames']) == ('rgb', 16, 4)
  assert meta['format'] == ext and meta['step'] == 2 and len(meta['config_hash']) == 64
  assert meta['mean'] == [0.485, 0.456, 0.406]
  module, variables = hub.load(out)
  _assert_trees_equal(variables, _run_variables(tiny_run))
  # The same embedding as the run's own evaluation path, so every protocol (linear probe,
  # retrieval) gives the same numbers on the exported-then-reloaded backbone. The weights are
  # bit-exact (above); the two jitted programs may round differently by an ulp (XLA fuses them
  # differently, and how depends on the CPU: equal on one machine, 6e-8 apart on another).
  run = runs.load_run(tiny_run)
  embed = runs.embed_fn_from_state(run.config, run.method, run.params, run.state)
  clips = np.random.default_rng(0).normal(size=(3, 4, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(
    np.asarray(jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, clips)),
    np.asarray(embed(clips)),
    rtol=1e-5,
    atol=1e-6,
  )


def test_export_of_a_step(tiny_run, tmp_path):
  out = str(tmp_path / 'b.npz')
  assert cli.main(['export', f'--workdir={tiny_run}', '--step=2', f'--out={out}']) == 0
  assert cli.main(['export', f'--workdir={tiny_run}', '--step=7', f'--out={out}']) == 2


def test_export_and_load_errors_are_one_line_with_exit_code_2(tiny_run, tmp_path, capsys):
  missing = str(tmp_path / 'nothing')
  assert cli.main(['export', f'--workdir={missing}', f'--out={tmp_path}/x.npz']) == 2
  assert missing in capsys.readouterr().err
  # A backbone torchvision does not have (R3D-10 at 1/16 width) cannot be written as torch.
  out = str(tmp_path / 'x.pt')
  assert cli.main(['export', f'--workdir={tiny_run}', f'--out={out}']) == 2
  err = capsys.readouterr().err
  # Without PyTorch installed (CI) the same command stops earlier, at the missing extra.
  assert err.count('\n') == 1 and (('r3d10' in err and 'torchvision' in err) or 'PyTorch' in err)
  assert cli.main(['export', f'--workdir={tiny_run}', f'--out={tmp_path}/x.bin']) == 2
  assert cli.main(['export', f'--workdir={tiny_run}', f'--out={tmp_path}/x.npz', '--format=torch'])
  with pytest.raises(PretrainedWeightsError, match='does not exist'):
    hub.load(str(tmp_path / 'absent.npz'))


def test_corrupt_file_and_wrong_backbone_are_named(tiny_run, tmp_path):
  out = str(tmp_path / 'b.npz')
  hub.export_run(tiny_run, out)
  with pytest.raises(PretrainedWeightsError, match="holds backbone 'r3d10'.*not 'r3d18'"):
    hub.load(out, backbone='r3d18')
  meta = weight_files.read_sidecar(out)
  weight_files.write_sidecar(out, dict(meta, backbone='r2plus1d10'))
  with pytest.raises(
    PretrainedWeightsError, match=r"b\.npz: variables do not match .*'r2plus1d10'"
  ):
    hub.load(out)
  weight_files.write_sidecar(out, meta)
  with open(out, 'r+b') as f:
    f.truncate(100)
  with pytest.raises(PretrainedWeightsError, match=r'b\.npz: not a readable npz'):
    hub.load(out)
  os.remove(out + '.json')
  with pytest.raises(PretrainedWeightsError, match=r'b\.npz\.json does not exist'):
    hub.load(out)


# --- config.init_from ------------------------------------------------------------------------


def _init_and_load(config):
  """What the loop does on a fresh start: init, then the pretrained-weights hook."""
  method = methods.build(config, 1)
  params, state = jax.jit(method.init)(jax.random.PRNGKey(5), method.example_batch(2))
  params, state = method.load_pretrained(params, state, runs.load_run)
  return method, base.load_init_from(method, params, state, runs.load_run)


@pytest.mark.parametrize('source', ['file', 'run'])
def test_init_from_a_file_or_a_run_sets_query_and_key_backbones(tiny_run, tmp_path, source):
  path = str(tmp_path / 'b.msgpack')
  hub.export_run(tiny_run, path)
  spec = path if source == 'file' else f'{tiny_run}:r3d10'
  method, (params, state) = _init_and_load(helpers.tiny_config(init_from=spec))
  expected = _run_variables(tiny_run)
  _assert_trees_equal(method.backbone_variables(params, state), expected)
  _assert_trees_equal(state['key_params']['backbone'], expected['params'])
  _assert_trees_equal(state['key_batch_stats']['backbone'], expected['batch_stats'])


def test_init_from_mismatches_are_errors_unless_partial(tiny_run, tmp_path, capsys):
  path = str(tmp_path / 'b.npz')
  hub.export_run(tiny_run, path)
  with pytest.raises(PretrainedWeightsError, match='model.width_multiplier=0.0625, this run has'):
    _init_and_load(helpers.tiny_config(init_from=path, **{'model.width_multiplier': 1 / 8}))
  with pytest.raises(PretrainedWeightsError, match="the run trained 'r3d10', not 'r3d18'"):
    _init_and_load(helpers.tiny_config(init_from=f'{tiny_run}:r3d18'))
  # A file that lacks one BN and has one extra variable: both named.
  with np.load(path) as data:
    flat = {k: data[k] for k in data.files}
  removed = flat.pop('batch_stats/stage4_block0/conv2/bn/var')
  flat['params/extra/kernel'] = np.zeros((2,), np.float32)
  np.savez(path, **flat)
  with pytest.raises(PretrainedWeightsError) as e:
    _init_and_load(helpers.tiny_config(init_from=path))
  assert "missing ['batch_stats']['stage4_block0']['conv2']['bn']['var']" in str(e.value)
  assert "unexpected ['params']['extra']['kernel']" in str(e.value)
  method, (params, state) = _init_and_load(
    helpers.tiny_config(init_from=path, init_from_partial=True)
  )
  assert 'partial load; not loaded' in capsys.readouterr().out
  loaded = method.backbone_variables(params, state)
  expected = _run_variables(tiny_run)
  np.testing.assert_array_equal(
    loaded['params']['stage4_block0']['conv2']['conv']['kernel'],
    expected['params']['stage4_block0']['conv2']['conv']['kernel'],
  )
  assert not np.array_equal(loaded['batch_stats']['stage4_block0']['conv2']['bn']['var'], removed)
  assert 'extra' not in loaded['params']


def test_init_from_runs_through_the_training_loop(tiny_run, tmp_path, capsys):
  path = str(tmp_path / 'b.npz')
  hub.export_run(tiny_run, path)
  helpers.run_training(
    helpers.tiny_config(init_from=path, num_steps=2), tmp_path / 'ft', jax.devices()[:1]
  )
  assert f'backbone initialised from {path}' in capsys.readouterr().out
  config = helpers.tiny_config(init_from=str(tmp_path / 'absent.npz'), num_steps=2)
  with pytest.raises(PretrainedWeightsError, match='absent.npz does not exist'):
    helpers.run_training(config, tmp_path / 'ft2', jax.devices()[:1])


def test_torch_state_dict_needs_its_backbone_named(tmp_path):
  path = str(tmp_path / 'k400.pth')
  open(path, 'wb').close()
  with pytest.raises(PretrainedWeightsError, match=r'give it as .*k400\.pth:r3d18'):
    hub.load(path)


@pytest.mark.torch
def test_load_a_torchvision_state_dict_file(tmp_path):
  torch = pytest.importorskip('torch')
  video = pytest.importorskip('torchvision.models.video')
  model = video.r2plus1d_18()
  path = str(tmp_path / 'r2plus1d.pth')
  torch.save(model.state_dict(), path)  # with fc.*, as torchvision's Kinetics weights
  module, variables = hub.load(path, backbone='r2plus1d18')
  _assert_trees_equal(variables, interop_torch.from_torchvision(model.state_dict(), 'r2plus1d18'))
  with pytest.raises(PretrainedWeightsError, match=r"r2plus1d\.pth: r3d18: key 'stem\.0\.weight'"):
    hub.load(path, backbone='r3d18')
  model = video.mvit_v1_b()
  path = str(tmp_path / 'mvit.pth')
  torch.save(model.state_dict(), path)
  module, variables = hub.load(path, backbone='mvit_b')
  assert variables['params']['pos_embed_spatial'].shape == (56, 56, 96)


def test_evaluate_weights_file_gives_the_runs_linear_probe(tiny_run, tmp_path, monkeypatch):
  """`jaxvssl evaluate --weights FILE` embeds with the exported-then-reloaded backbone: the same
  features as the run's own evaluation, hence the same linear probe (fitted here on both)."""
  from jaxvssl import evaluate  # pylint: disable=g-import-not-at-top
  from jaxvssl.evaluation import linear_probe  # pylint: disable=g-import-not-at-top

  out = str(tmp_path / 'backbone.npz')
  assert cli.main(['export', f'--workdir={tiny_run}', f'--out={out}']) == 0
  seen = {}

  def frozen(embed_fn, *args, **kwargs):
    seen['embed_fn'] = embed_fn
    return {'retrieval/R@1': 0.0}

  monkeypatch.setattr(evaluate.suite, 'evaluate_frozen', frozen)
  monkeypatch.setattr(evaluate, 'gallery_plot', lambda *a, **k: None)
  monkeypatch.setattr(evaluate, '_class_names', lambda cfg: None)
  (tmp_path / 'e').mkdir()  # evaluate_frozen, stubbed here, makes it
  assert (
    cli.main(['evaluate', f'--workdir={tiny_run}', f'--weights={out}', f'--out={tmp_path / "e"}'])
    == 0
  )
  summary = json.loads((tmp_path / 'e' / 'summary.json').read_text())
  assert summary['source'] == f'weights file {out}'

  run = runs.load_run(tiny_run)
  # `evaluate` shards the embedding over every device; the same mesh here, the same computation.
  mesh = parallel.make_mesh()
  run_embed = runs.embed_fn_from_state(run.config, run.method, run.params, run.state, mesh=mesh)
  rng = np.random.default_rng(0)

  def features(embed, clips, labels):
    # extract_features' layout: [V videos, N clips, D], one label and id per video.
    feats = np.asarray(embed(clips)).reshape(len(labels), 2, -1)
    return {'features': feats, 'labels': labels, 'video_ids': np.arange(len(labels)).astype(str)}

  splits = {}
  for split, n in (('train', 24), ('test', 12)):
    clips = rng.normal(size=(2 * n, 4, 16, 16, 3)).astype(np.float32)
    labels = np.arange(n) % 3
    splits[split] = (features(seen['embed_fn'], clips, labels), features(run_embed, clips, labels))
  np.testing.assert_array_equal(splits['train'][0]['features'], splits['train'][1]['features'])
  cfg = {'num_steps': 20, 'learning_rates': (0.1,), 'weight_decays': (0.0, 1e-3)}
  from_file, _ = linear_probe.evaluate_linear_probe(splits['train'][0], splits['test'][0], cfg)
  from_run, _ = linear_probe.evaluate_linear_probe(splits['train'][1], splits['test'][1], cfg)
  assert from_file == from_run and set(from_run) >= {'linear_probe/clip_top1'}


def test_evaluate_weights_refuses_other_sources(tiny_run, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(['evaluate', f'--workdir={tiny_run}', '--weights=x.npz', '--random_init'])
  assert e.value.code == 2
  assert '--weights cannot be combined' in capsys.readouterr().err

"""Finetuning a tiny backbone-like flax module: it learns, all weights move, it runs sharded over
1 or 8 (fake CPU) devices with the same result, and a stopped or crashed run resumes from its
checkpoints to the same end as an uninterrupted one."""

import itertools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import errors, parallel
from jaxvssl.evaluation import finetune as ft

ONE = parallel.make_mesh(jax.devices()[:1])


class TinyBackbone(nn.Module):
  """Follows the jaxvssl.models contract: x [B,T,H,W,C], train -> pooled [B, D]."""

  width: int = 8

  @nn.compact
  def __call__(self, x, train: bool, return_stages: bool = False):
    x = nn.Conv(self.width, (3, 3, 3), padding='SAME', use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.relu(x)
    return jnp.mean(x, axis=(1, 2, 3))  # global average pool -> [B, width]


def _problem(rng, num=16, t=4, size=8):
  """Class 0: the left half of every frame is bright, class 1: the right half."""
  labels = np.arange(num) % 2
  clips = 0.3 * rng.normal(size=(num, t, size, size, 3))
  half = size // 2
  clips[labels == 0, :, :, :half] += 1.0
  clips[labels == 1, :, :, half:] += 1.0
  return clips.astype(np.float32), labels.astype(np.int32)


def _train_iter(clips, labels, batch, seed):
  rng = np.random.default_rng(seed)
  while True:
    order = rng.permutation(len(labels))
    for s in range(0, len(labels) - batch + 1, batch):
      idx = order[s : s + batch]
      yield {'clips': clips[idx], 'label': labels[idx]}


def _eval_batches(clips, labels):
  """Eval-pipeline format with N = 2 clips per video (the clip and its mirror)."""
  two = np.stack([clips, clips[:, :, ::-1, :, :]], axis=1)
  return [
    {
      'clips': two[s : s + 4],
      'label': labels[s : s + 4],
      'video_id': np.array([f'v{i}' for i in range(s, s + 4)]),
      'valid': np.ones(4, bool),
    }
    for s in range(0, len(labels), 4)
  ]


@pytest.mark.parametrize('optimizer, learning_rate', [('sgd', 0.1), ('adamw', 0.01)])
def test_finetune_improves_train_accuracy(tmp_path, optimizer, learning_rate):
  rng = np.random.default_rng(0)
  clips, labels = _problem(rng)
  backbone = TinyBackbone()
  pretrained = jax.jit(lambda r, x: backbone.init(r, x, train=False))(
    jax.random.PRNGKey(0), clips[:2]
  )
  cfg = ft.FinetuneConfig(
    epochs=15,
    batch_size=8,
    learning_rate=learning_rate,
    optimizer=optimizer,
    num_train_examples=16,
    dropout=0.1,
    log_every_steps=1,
  )
  batches = list(itertools.islice(_train_iter(clips, labels, 8, 0), cfg.total_steps()))
  metrics, variables, history = ft.finetune(
    backbone,
    pretrained,
    batches,
    _eval_batches(clips, labels),
    num_classes=2,
    cfg=cfg,
    out_dir=tmp_path,
  )
  # history[0] = the untouched model on the first batch (logits computed before the update)
  assert history[0]['train_top1'] <= 0.75
  assert metrics['finetune/video_top1'] == 1.0 and metrics['finetune/clip_top1'] >= 0.9
  assert np.mean([h['train_top1'] for h in history[-5:]]) >= 0.9
  assert history[-1]['step'] == cfg.total_steps() == 30
  assert np.mean([h['loss'] for h in history[-5:]]) < 0.75 * history[0]['loss']
  # whole network finetuned: backbone kernel and BatchNorm running stats both changed
  k0 = pretrained['params']['Conv_0']['kernel']
  assert not np.allclose(variables['params']['backbone']['Conv_0']['kernel'], k0)
  assert not np.allclose(
    variables['batch_stats']['backbone']['BatchNorm_0']['mean'],
    pretrained['batch_stats']['BatchNorm_0']['mean'],
  )
  assert (tmp_path / 'results.json').exists()
  assert len((tmp_path / 'metrics.jsonl').read_text().splitlines()) == 30


def test_finetune_input_errors():
  """All raised before anything is compiled, so cheap."""
  rng = np.random.default_rng(0)
  clips, labels = _problem(rng, num=8)
  cfg = ft.FinetuneConfig(epochs=2, batch_size=4, steps_per_epoch=2)
  run = lambda data, mesh=ONE: ft.finetune(TinyBackbone(), {}, data, None, 2, cfg, mesh=mesh)
  with pytest.raises(KeyError, match='input_key'):
    run([{'view0': clips[:4], 'label': labels[:4]}])
  with pytest.raises(ValueError, match='batch_size=4'):
    run([{'clips': clips[:3], 'label': labels[:3]}])
  with pytest.raises(ValueError, match='ran out at step 0'):
    run([])
  with pytest.raises(errors.ConfigError, match='batch_size=4 does not split evenly over 8'):
    run([{'clips': clips[:4], 'label': labels[:4]}], parallel.make_mesh(jax.devices()[:8]))
  with pytest.raises(ValueError, match="optimizer='adam'"):
    ft.FinetuneConfig(optimizer='adam')
  with pytest.raises(ValueError, match='num_train_examples'):
    ft.FinetuneConfig(batch_size=128, num_train_examples=10).total_steps()


def _resume_setup(epochs=3):
  """A tiny problem whose train stream is a pure function of the step (like the real pipeline)."""
  clips, labels = _problem(np.random.default_rng(0))
  backbone = TinyBackbone()
  pretrained = jax.jit(lambda r, x: backbone.init(r, x, train=False))(
    jax.random.PRNGKey(0), clips[:2]
  )
  cfg = ft.FinetuneConfig(
    epochs=epochs,
    batch_size=8,
    learning_rate=0.1,
    num_train_examples=16,  # 2 steps per epoch
    dropout=0.1,
    log_every_steps=1,
    checkpoint_every_steps=2,
    progress_bar=False,
  )
  data = lambda start: itertools.islice(_train_iter(clips, labels, 8, 0), start, None)
  return backbone, pretrained, data, _eval_batches(clips, labels), cfg


def _params(variables):
  return jax.tree.map(np.asarray, variables)


def test_stopped_and_crashed_finetuning_resumes_to_the_uninterrupted_result(tmp_path, capsys):
  backbone, pretrained, data, evaluation, cfg = _resume_setup()
  run = lambda out, train_data=data, **kw: ft.finetune(
    backbone, pretrained, train_data, evaluation, 2, cfg, out, **kw
  )
  straight, straight_vars, _ = run(tmp_path / 'straight')

  out = tmp_path / 'resumed'
  stopped, _, history = run(out, stop_after_steps=3)  # checkpoints at steps 2 and 3
  assert [h['step'] for h in history] == [1, 2, 3] and 'finetune/video_top1' not in stopped
  assert not (out / 'results.json').exists()

  def crashing(start):  # the process dies while reading the batch of step 5 (after ckpt 4)
    for step, batch in enumerate(data(start), start):
      if step == 5:
        raise RuntimeError('killed')
      yield batch

  with pytest.raises(RuntimeError, match='killed'):
    run(out, crashing)
  metrics, variables, history = run(out)
  assert [h['step'] for h in history] == [5, 6]  # resumed from the checkpoint of step 4
  assert 'resumed from step 4 of 6' in capsys.readouterr().out
  assert metrics == straight
  jax.tree.map(np.testing.assert_array_equal, _params(variables), _params(straight_vars))
  rows = lambda d: [json.loads(line) for line in (d / 'metrics.jsonl').read_text().splitlines()]
  assert rows(out) == rows(tmp_path / 'straight')  # one row per step, none twice
  assert sorted(int(p.name) for p in (out / 'checkpoints').iterdir() if p.name.isdigit()) == [4, 6]

  # A finished run only re-evaluates; another finetune config is refused, naming the key.
  again, _, history = run(out)
  assert again == straight and history == []
  other = ft.FinetuneConfig(**{**cfg.__dict__, 'learning_rate': 0.2})
  with pytest.raises(errors.ResumeMismatchError, match=r'learning_rate: 0\.1 -> 0\.2'):
    ft.finetune(backbone, pretrained, data, evaluation, 2, other, out)


def test_finetuning_on_one_and_eight_devices_gives_the_same_result():
  """Batch sharded over 8 fake CPU devices (BatchNorm over the global batch): the same numbers."""
  backbone, pretrained, data, evaluation, cfg = _resume_setup(epochs=2)
  one = ft.finetune(backbone, pretrained, data, evaluation, 2, cfg, mesh=ONE)
  eight = ft.finetune(
    backbone, pretrained, data, evaluation, 2, cfg, mesh=parallel.make_mesh(jax.devices()[:8])
  )
  assert one[0].keys() == eight[0].keys()
  for key in one[0]:
    assert one[0][key] == pytest.approx(eight[0][key], abs=1e-5), key
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
    _params(one[1]),
    _params(eight[1]),
  )
  assert [h['train_top1'] for h in one[2]] == [h['train_top1'] for h in eight[2]]

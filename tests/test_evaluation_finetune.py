"""Finetuning a tiny backbone-like flax module improves train accuracy; all weights move."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl.evaluation import finetune as ft


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
  with pytest.raises(KeyError, match='input_key'):
    ft.finetune(TinyBackbone(), {}, [{'view0': clips[:4], 'label': labels[:4]}], None, 2, cfg)
  with pytest.raises(ValueError, match='batch_size=4'):
    ft.finetune(TinyBackbone(), {}, [{'clips': clips[:3], 'label': labels[:3]}], None, 2, cfg)
  with pytest.raises(ValueError, match='ran out at step 0'):
    ft.finetune(TinyBackbone(), {}, [], None, 2, cfg)
  with pytest.raises(ValueError, match="optimizer='adam'"):
    ft.FinetuneConfig(optimizer='adam')
  with pytest.raises(ValueError, match='num_train_examples'):
    ft.FinetuneConfig(batch_size=128, num_train_examples=10).total_steps()

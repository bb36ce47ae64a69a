"""Feature extraction drops padded rows, keeps order, never duplicates; cache round trip."""

import numpy as np
import pytest

from jaxvssl.evaluation import features as F


def _batches(num_videos=7, batch=3, n=2, t=4, size=5):
  """Eval-pipeline-like batches whose last batch is padded with valid=False rows."""
  out = []
  for s in range(0, num_videos, batch):
    ids = list(range(s, min(s + batch, num_videos)))
    pad = batch - len(ids)
    vid = np.array(ids + [0] * pad)
    clips = np.zeros((batch, n, t, size, size, 3), np.float32)
    clips += vid[:, None, None, None, None, None].astype(np.float32)  # clip value = video index
    clips += np.arange(n)[None, :, None, None, None, None] * 0.1  # + clip index / 10
    out.append(
      {
        'clips': clips,
        'label': vid % 3,
        'video_id': np.array([f'v{i}'.encode() for i in vid], dtype=object),
        'valid': np.array([True] * len(ids) + [False] * pad),
      }
    )
  return out


def _embed(clips):
  return np.stack([clips.reshape(clips.shape[0], -1).mean(1), np.ones(clips.shape[0])], 1)


def test_padded_rows_dropped_and_order_kept():
  calls = []

  def embed(clips):
    calls.append(clips.shape[0])
    return _embed(clips)

  out = F.extract_features(embed, _batches())
  assert out['features'].shape == (7, 2, 2) and out['features'].dtype == np.float32
  assert list(out['video_ids']) == [f'v{i}' for i in range(7)]
  np.testing.assert_array_equal(out['labels'], np.arange(7) % 3)
  np.testing.assert_allclose(
    out['features'][:, :, 0], np.arange(7)[:, None] + [0.0, 0.1], atol=1e-6
  )
  assert calls == [6, 6, 2]  # the padded rows of the last batch were never embedded


def test_duplicate_ids_rejected():
  b = _batches()
  with pytest.raises(ValueError, match='duplicate video ids'):
    F.extract_features(_embed, b + b[:1])
  assert F.extract_features(_embed, b + b[:1], check_unique_ids=False)['features'].shape[0] == 10


def test_missing_key_named():
  b = _batches()[0]
  del b['valid']
  with pytest.raises(KeyError, match='valid'):
    F.extract_features(_embed, [b])


def test_save_load_and_cache(tmp_path):
  feats = F.extract_features(_embed, _batches())
  path = F.save_features(tmp_path / 'f', feats)
  back = F.load_features(path)
  np.testing.assert_array_equal(back['features'], feats['features'])
  np.testing.assert_array_equal(back['labels'], feats['labels'])
  assert list(back['video_ids']) == list(feats['video_ids'])

  ckpt = tmp_path / 'ckpt'
  ckpt.mkdir()
  (ckpt / 'params').write_bytes(b'123')
  fp = F.feature_fingerprint(ckpt, {'num_clips': 10}, 'test')
  assert fp == F.feature_fingerprint(ckpt, {'num_clips': 10}, 'test')
  assert fp != F.feature_fingerprint(ckpt, {'num_clips': 5}, 'test')
  assert fp != F.feature_fingerprint(ckpt, {'num_clips': 10}, 'train')
  (ckpt / 'params').write_bytes(b'12345')
  assert fp != F.feature_fingerprint(ckpt, {'num_clips': 10}, 'test')

  calls = []

  def extract():
    calls.append(1)
    return feats

  a = F.cached_features(tmp_path / 'cache', fp, extract)
  b = F.cached_features(tmp_path / 'cache', fp, extract)
  assert len(calls) == 1
  np.testing.assert_array_equal(a['features'], b['features'])


def test_backbone_embed_fn_chunks_and_pads():
  import flax.linen as nn
  import jax

  class Pool(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool, return_stages: bool = False):
      return nn.Dense(3)(x.mean(axis=(1, 2, 3)))

  rng = np.random.default_rng(0)
  clips = rng.normal(size=(5, 2, 4, 4, 3)).astype(np.float32)
  module = Pool()
  variables = module.init(jax.random.PRNGKey(0), clips, train=False)
  full = F.make_backbone_embed_fn(module, variables)(clips)
  chunked = F.make_backbone_embed_fn(module, variables, batch_size=2)(clips)
  assert full.shape == chunked.shape == (5, 3)
  np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)


def test_tf_data_batches_with_string_ids():
  """The eval pipeline yields tf tensors (video_id: tf.string); same result as numpy batches."""
  tf = pytest.importorskip('tensorflow')
  batches = _batches()
  flat = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  flat['video_id'] = flat['video_id'].astype(bytes)
  ds = tf.data.Dataset.from_tensor_slices(flat).batch(3)
  out = F.extract_features(_embed, ds)
  ref = F.extract_features(_embed, batches)
  assert list(out['video_ids']) == [f'v{i}' for i in range(7)]
  np.testing.assert_array_equal(out['features'], ref['features'])
  np.testing.assert_array_equal(out['labels'], ref['labels'])

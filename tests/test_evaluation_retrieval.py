"""Retrieval: R@k against a brute-force loop reference, ties, k > gallery, chunking, JSON."""

import json

import numpy as np
import pytest

from jaxvssl.evaluation import retrieval

KS = (1, 5, 10, 20, 50)


def _exact_features(rng, num, dim=16, nonzeros=4):
  """Unit vectors with entries in {0, +-0.5}: every dot product is an exact multiple of 0.25, so
  scores are identical however the matmul is blocked, and ties are plentiful."""
  x = np.zeros((num, dim), np.float32)
  for i in range(num):
    pos = rng.choice(dim, nonzeros, replace=False)
    x[i, pos] = rng.choice([-0.5, 0.5], nonzeros)
  return x


def _reference(query, qlab, gallery, glab, ks):
  """Brute force with Python loops: mean over clips, normalise, score every pair, sort by
  (-score, gallery index), R@k with k clipped to the gallery size."""

  def embed(f):
    v = f.mean(axis=1) if f.ndim == 3 else f
    return [row / max(np.sqrt(float(np.dot(row, row))), 1e-12) for row in v.astype(np.float64)]

  q, g = embed(query), embed(gallery)
  rankings = []
  for qi in range(len(q)):
    scores = [float(np.dot(q[qi], g[gi])) for gi in range(len(g))]
    rankings.append(sorted(range(len(g)), key=lambda gi: (-scores[gi], gi)))
  recall = {}
  for k in ks:
    kk = min(k, len(g))
    recall[k] = float(
      np.mean([any(glab[j] == qlab[qi] for j in rankings[qi][:kk]) for qi in range(len(q))])
    )
  return recall, rankings


@pytest.mark.parametrize('num_gallery', [3, 7, 60, 130])
def test_recall_matches_bruteforce_with_exact_ties(num_gallery):
  rng = np.random.default_rng(num_gallery)
  # identical clips per video so the mean over clips is exact too
  g = np.repeat(_exact_features(rng, num_gallery)[:, None], 3, axis=1)
  q = np.repeat(_exact_features(rng, 25)[:, None], 3, axis=1)
  g[1] = g[0]  # duplicated gallery videos: an exact tie for every query
  glab = rng.integers(0, 6, num_gallery)
  qlab = rng.integers(0, 6, 25)
  ref_recall, ref_rank = _reference(q, qlab, g, glab, KS)
  res = retrieval.retrieve(q, qlab, g, glab, ks=KS, query_chunk=4, gallery_chunk=16)
  assert res.recall == pytest.approx(ref_recall, abs=0)
  kk = min(max(KS), num_gallery)
  assert res.topk_indices.shape == (25, kk)
  for qi in range(25):
    assert list(res.topk_indices[qi]) == ref_rank[qi][:kk]
  assert res.effective_k == {k: min(k, num_gallery) for k in KS}


def test_recall_matches_bruteforce_random_gaussian():
  rng = np.random.default_rng(0)
  g = rng.normal(size=(200, 5, 32)).astype(np.float32)
  q = rng.normal(size=(40, 5, 32)).astype(np.float32)
  glab, qlab = rng.integers(0, 10, 200), rng.integers(0, 10, 40)
  ref_recall, ref_rank = _reference(q, qlab, g, glab, KS)
  res = retrieval.retrieve(q, qlab, g, glab, ks=KS, query_chunk=7, gallery_chunk=33)
  assert res.recall == pytest.approx(ref_recall, abs=0)
  np.testing.assert_array_equal(res.topk_indices, np.asarray([r[:50] for r in ref_rank]))


def test_ties_lower_gallery_index_wins():
  e = np.eye(4, dtype=np.float32)
  gallery = np.stack([e[1], e[0], e[0], e[0], e[2], e[0]])
  for gchunk in (1, 2, 4, 100):
    _, idx = retrieval.topk_cosine(e[:1], gallery, 4, gallery_chunk=gchunk)
    assert list(idx[0]) == [1, 2, 3, 5], gchunk


def test_k_larger_than_gallery_is_clipped():
  q = np.eye(3, dtype=np.float32)
  g = np.eye(3, dtype=np.float32)[::-1].copy()
  res = retrieval.retrieve(q, np.array([0, 1, 2]), g, np.array([2, 1, 0]), ks=(1, 2, 50))
  assert res.topk_indices.shape == (3, 3)
  assert res.recall == {1: 1.0, 2: 1.0, 50: 1.0}
  assert res.effective_k == {1: 1, 2: 2, 50: 3}
  res = retrieval.retrieve(q, np.array([0, 1, 5]), g, np.array([2, 1, 0]), ks=(1, 50))
  assert res.recall[50] == pytest.approx(2 / 3)
  assert list(res.first_hit_rank) == [1, 1, 0]


def test_chunked_equals_unchunked():
  rng = np.random.default_rng(3)
  q = _exact_features(rng, 50)
  g = _exact_features(rng, 300)
  s_full, i_full = retrieval.topk_cosine(q, g, 20, query_chunk=10**6, gallery_chunk=10**6)
  for qc, gc in [(1, 1), (7, 13), (50, 64), (3, 299)]:
    s, i = retrieval.topk_cosine(q, g, 20, query_chunk=qc, gallery_chunk=gc)
    np.testing.assert_array_equal(i, i_full)
    np.testing.assert_array_equal(s, s_full)


def test_rejects_bad_input():
  with pytest.raises(ValueError, match='NaN'):
    retrieval.video_embeddings(np.full((2, 3), np.nan))
  with pytest.raises(ValueError, match='must be'):
    retrieval.topk_cosine(np.zeros((2, 3)), np.zeros((4, 5)), 1)


def test_evaluate_retrieval_writes_per_query_json(tmp_path):
  rng = np.random.default_rng(1)
  train = {
    'features': rng.normal(size=(30, 2, 8)).astype(np.float32),
    'labels': rng.integers(0, 3, 30),
    'video_ids': np.array([f'tr{i}' for i in range(30)]),
  }
  test = {
    'features': rng.normal(size=(9, 2, 8)).astype(np.float32),
    'labels': rng.integers(0, 3, 9),
    'video_ids': np.array([f'te{i}' for i in range(9)]),
  }
  metrics = retrieval.evaluate_retrieval(train, test, tmp_path, run_name='r')
  assert set(metrics) == {f'retrieval/R@{k}' for k in KS}
  rows = json.loads((tmp_path / 'retrieval_per_query.json').read_text())
  assert len(rows) == 9
  r0 = rows[0]
  assert (
    r0['query_id'] == 'te0' and len(r0['topk_ids']) == 30 and r0['topk_ids'][0].startswith('tr')
  )
  assert r0['topk_labels'] == [int(train['labels'][i]) for i in r0['topk_indices']]
  assert r0['topk_scores'] == sorted(r0['topk_scores'], reverse=True)
  hit1 = np.mean([r['hits']['1'] for r in rows])
  assert metrics['retrieval/R@1'] == pytest.approx(hit1)
  payload = json.loads((tmp_path / 'results.json').read_text())
  assert payload['metrics'] == pytest.approx(metrics)
  assert (tmp_path / 'results.md').read_text().startswith('## retrieval: r')

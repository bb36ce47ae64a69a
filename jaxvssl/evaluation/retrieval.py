"""Nearest-neighbour video retrieval (test videos query train videos), R@k.

Protocol (the VCOP / CACL one, see docs/evaluation.md):
  * video feature = mean of its N clip features `[N, D] -> [D]`, then L2-normalised;
  * similarity = cosine = dot product of the normalised vectors;
  * for each test (query) video the train (gallery) videos are ranked by similarity;
  * R@k = fraction of queries with at least one video of the same class among the top k,
    for k in (1, 5, 10, 20, 50).

Ranking is exact and deterministic: videos are ordered by decreasing similarity and exact ties
(equal float32 scores) are broken by the gallery index, LOWER INDEX FIRST. A k larger than the
gallery is clipped to the gallery size (R@k is then R@G), and the effective k is recorded.

Memory is bounded: similarities are computed for blocks of `query_chunk x gallery_chunk` only and a
running top-k (k = max k) per query is merged block by block, so peak memory is
O(query_chunk * gallery_chunk + Q * k) on top of the features, never O(Q * G). The defaults
(1024 x 16384 float32 = 64 MiB per block) handle a 100k-video gallery comfortably.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxvssl.evaluation import reports

RECALL_KS: tuple[int, ...] = (1, 5, 10, 20, 50)
DEFAULT_QUERY_CHUNK = 1024
DEFAULT_GALLERY_CHUNK = 16384
_NORM_EPS = 1e-12  # guards the L2 normalisation of an all-zero feature (it stays zero)


def video_embeddings(features: np.ndarray) -> np.ndarray:
  """`[V, N, D]` clip features (or `[V, D]`) -> `[V, D]` L2-normalised mean-over-clips, float32."""
  features = np.asarray(features, dtype=np.float32)
  if features.ndim == 3:
    features = features.mean(axis=1)
  if features.ndim != 2:
    raise ValueError(f'features must be [V, N, D] or [V, D], got shape {features.shape}')
  if not np.isfinite(features).all():
    raise ValueError('features contain NaN or Inf; refusing to rank them')
  norm = np.linalg.norm(features, axis=1, keepdims=True)
  return (features / np.maximum(norm, _NORM_EPS)).astype(np.float32, copy=False)


def _sort_candidates(
  scores: np.ndarray, indices: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
  """Keeps the k best per row by (score desc, index asc); rows sorted in that order."""
  order = np.lexsort((indices, -scores), axis=-1)[:, :k]
  return (np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1))


def _block_topk(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Exact top-k per row of a `[q, g]` block with lower-column-index tie-breaking.

  `argpartition` alone picks arbitrary members of a tie at the k-th value, so: find the k-th
  largest value t per row, keep everything > t, and fill up with the lowest-index entries == t.
  Every row then has exactly k selected entries, which `nonzero` returns in index order.
  """
  q, g = sims.shape
  if k >= g:
    idx = np.broadcast_to(np.arange(g), (q, g))
    return _sort_candidates(sims, idx, k)
  kth = np.partition(sims, g - k, axis=1)[:, g - k]  # [q] k-th largest value
  greater = sims > kth[:, None]
  equal = sims == kth[:, None]
  need = k - greater.sum(axis=1)  # >= 1 by definition of kth
  keep = greater | equal
  # Only rows with more ties at the k-th value than free slots need the (costly) cumsum.
  crowded = np.flatnonzero(equal.sum(axis=1) > need)
  if crowded.size:
    eq = equal[crowded]
    keep[crowded] = greater[crowded] | (eq & (np.cumsum(eq, axis=1) <= need[crowded, None]))
  cols = np.nonzero(keep)[1].reshape(q, k)
  return _sort_candidates(np.take_along_axis(sims, cols, axis=1), cols, k)


def topk_cosine(
  queries: np.ndarray,
  gallery: np.ndarray,
  k: int,
  *,
  query_chunk: int = DEFAULT_QUERY_CHUNK,
  gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
  """Top-k gallery rows per query by dot product, chunked.

  Args:
    queries: `[Q, D]` (already L2-normalised for cosine similarity).
    gallery: `[G, D]`.
    k: number of neighbours; clipped to G.
    query_chunk, gallery_chunk: block sizes (memory ~ 4 * query_chunk * gallery_chunk bytes).
  Returns:
    `(scores float32 [Q, k'], indices int64 [Q, k'])`, k' = min(k, G), best first, ties ->
    lower gallery index first.
  """
  queries = np.ascontiguousarray(queries, dtype=np.float32)
  gallery = np.ascontiguousarray(gallery, dtype=np.float32)
  if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
    raise ValueError(f'queries {queries.shape} and gallery {gallery.shape} must be [Q, D], [G, D]')
  if gallery.shape[0] == 0 or queries.shape[0] == 0:
    raise ValueError(f'empty gallery or queries: gallery {gallery.shape}, queries {queries.shape}')
  if k < 1 or query_chunk < 1 or gallery_chunk < 1:
    raise ValueError(
      f'k={k}, query_chunk={query_chunk}, gallery_chunk={gallery_chunk} must be >= 1'
    )
  num_q, num_g = queries.shape[0], gallery.shape[0]
  k = min(k, num_g)
  all_scores = np.empty((num_q, k), np.float32)
  all_idx = np.empty((num_q, k), np.int64)
  for qs in range(0, num_q, query_chunk):
    q = queries[qs : qs + query_chunk]
    best_s = np.empty((q.shape[0], 0), np.float32)
    best_i = np.empty((q.shape[0], 0), np.int64)
    for gs in range(0, num_g, gallery_chunk):
      sims = q @ gallery[gs : gs + gallery_chunk].T  # [q, g] float32 block
      s, i = _block_topk(sims, min(k, sims.shape[1]))
      best_s, best_i = _sort_candidates(
        np.concatenate([best_s, s], axis=1), np.concatenate([best_i, i + gs], axis=1), k
      )
    all_scores[qs : qs + q.shape[0]] = best_s
    all_idx[qs : qs + q.shape[0]] = best_i
  return all_scores, all_idx


@dataclasses.dataclass
class RetrievalResult:
  """Outcome of `retrieve`.

  recall: {k: R@k} for the requested ks (fractions in [0, 1]).
  effective_k: {k: min(k, G)}.
  topk_indices / topk_scores / topk_labels: `[Q, K]`, K = min(max(ks), G).
  hits: `[Q, len(ks)]` bool, hits[q, j] = a same-class video within the top ks[j].
  first_hit_rank: `[Q]` 1-based rank of the first same-class video within K, 0 if none.
  """

  ks: tuple[int, ...]
  recall: dict[int, float]
  effective_k: dict[int, int]
  topk_indices: np.ndarray
  topk_scores: np.ndarray
  topk_labels: np.ndarray
  hits: np.ndarray
  first_hit_rank: np.ndarray


def recall_at_k(
  topk_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int] = RECALL_KS
) -> tuple[dict[int, float], np.ndarray]:
  """R@k from ranked neighbour labels `[Q, K]` (best first) and query labels `[Q]`."""
  match = np.asarray(topk_labels) == np.asarray(query_labels)[:, None]
  kmax = match.shape[1]
  hits = np.stack([match[:, : min(k, kmax)].any(axis=1) for k in ks], axis=1)
  return {int(k): float(hits[:, j].mean()) for j, k in enumerate(ks)}, hits


def retrieve(
  query_features: np.ndarray,
  query_labels: np.ndarray,
  gallery_features: np.ndarray,
  gallery_labels: np.ndarray,
  *,
  ks: Sequence[int] = RECALL_KS,
  query_chunk: int = DEFAULT_QUERY_CHUNK,
  gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
) -> RetrievalResult:
  """Cosine retrieval of gallery videos for each query video and R@k.

  Args:
    query_features: `[Q, N, D]` clip features (mean-pooled and normalised here) or `[Q, D]`.
    query_labels: `[Q]` int.
    gallery_features: `[G, N', D]` or `[G, D]`.
    gallery_labels: `[G]` int.
  """
  ks = tuple(int(k) for k in ks)
  if not ks or min(ks) < 1:
    raise ValueError(f'ks must be positive integers, got {ks}')
  q = video_embeddings(query_features)
  g = video_embeddings(gallery_features)
  query_labels = np.asarray(query_labels).reshape(-1)
  gallery_labels = np.asarray(gallery_labels).reshape(-1)
  if query_labels.shape[0] != q.shape[0] or gallery_labels.shape[0] != g.shape[0]:
    raise ValueError(
      f'labels {query_labels.shape}/{gallery_labels.shape} do not match features '
      f'{q.shape}/{g.shape}'
    )
  scores, idx = topk_cosine(q, g, max(ks), query_chunk=query_chunk, gallery_chunk=gallery_chunk)
  topk_labels = gallery_labels[idx]
  recall, hits = recall_at_k(topk_labels, query_labels, ks)
  match = topk_labels == query_labels[:, None]
  first = np.where(match.any(axis=1), match.argmax(axis=1) + 1, 0)
  return RetrievalResult(
    ks=ks,
    recall=recall,
    effective_k={k: min(k, g.shape[0]) for k in ks},
    topk_indices=idx,
    topk_scores=scores,
    topk_labels=topk_labels,
    hits=hits,
    first_hit_rank=first,
  )


def per_query_records(
  result: RetrievalResult,
  query_ids: Sequence[str] | None,
  query_labels: np.ndarray,
  gallery_ids: Sequence[str] | None,
) -> list[dict[str, Any]]:
  """JSON-ready per-query rows: ids, labels, ranked neighbours, scores, hit flags."""
  rows = []
  for qi in range(result.topk_indices.shape[0]):
    nbr = result.topk_indices[qi]
    rows.append(
      {
        'query_index': qi,
        'query_id': None if query_ids is None else str(query_ids[qi]),
        'query_label': int(query_labels[qi]),
        'topk_indices': [int(i) for i in nbr],
        'topk_ids': None if gallery_ids is None else [str(gallery_ids[i]) for i in nbr],
        'topk_labels': [int(x) for x in result.topk_labels[qi]],
        'topk_scores': [round(float(s), 6) for s in result.topk_scores[qi]],
        'hits': {str(k): bool(result.hits[qi, j]) for j, k in enumerate(result.ks)},
        'first_hit_rank': int(result.first_hit_rank[qi]),
      }
    )
  return rows


def evaluate_retrieval(
  train: Mapping[str, np.ndarray],
  test: Mapping[str, np.ndarray],
  out_dir: str | os.PathLike | None = None,
  *,
  ks: Sequence[int] = RECALL_KS,
  query_chunk: int = DEFAULT_QUERY_CHUNK,
  gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
  run_name: str | None = None,
) -> dict[str, float]:
  """Test-queries-train retrieval from two `extract_features` dicts.

  Writes, when `out_dir` is given: `retrieval_per_query.json` (a list of `per_query_records`
  rows), `results.json` and `results.md` (see `reports.write_results`).

  Returns:
    `{'retrieval/R@1': ..., ..., 'retrieval/R@50': ...}` (fractions).
  """
  res = retrieve(
    test['features'],
    test['labels'],
    train['features'],
    train['labels'],
    ks=ks,
    query_chunk=query_chunk,
    gallery_chunk=gallery_chunk,
  )
  metrics = {f'retrieval/R@{k}': v for k, v in res.recall.items()}
  if out_dir is not None:
    out = epath.Path(out_dir)  # also gs://
    out.mkdir(parents=True, exist_ok=True)
    rows = per_query_records(
      res, test.get('video_ids'), np.asarray(test['labels']), train.get('video_ids')
    )
    (out / 'retrieval_per_query.json').write_text(json.dumps(rows))
    reports.write_results(
      out_dir,
      metrics,
      protocol='retrieval',
      run_name=run_name,
      details={
        'num_queries': int(res.topk_indices.shape[0]),
        'gallery_size': int(np.asarray(train['labels']).shape[0]),
        'effective_k': {str(k): v for k, v in res.effective_k.items()},
        'similarity': 'cosine of L2-normalised mean-over-clips features',
        'tie_breaking': 'lower gallery index first',
      },
    )
  return metrics

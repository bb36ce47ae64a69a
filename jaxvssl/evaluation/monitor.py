"""Online monitoring during pretraining: kNN accuracy and R@k on a small held-out subset.

Every `every_steps` steps the trainer calls the monitor with its current `embed_fn`; the monitor
embeds a small train subset (the gallery / kNN memory) and a small test subset (the queries) with
the retrieval protocol's features (mean over clips, L2-normalised, cosine) and returns scalars to
log:
  * `monitor/knn_top1`: weighted kNN classification (InstDisc-style): the `knn_k` nearest gallery
    videos vote for their class with weight exp(cosine / `knn_temperature`); ties in the vote go to
    the lower class index;
  * `monitor/R@k` for k in `recall_ks`, exactly as retrieval.py.
The subsets must be re-iterable (a tf.data.Dataset, a list of batches) or zero-argument callables
returning a fresh iterator, because they are read at every evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxvssl.evaluation import retrieval
from jaxvssl.evaluation.features import EmbedFn, extract_features

DataSource = Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]]


def knn_predict(
  query: np.ndarray,
  gallery: np.ndarray,
  gallery_labels: np.ndarray,
  num_classes: int,
  k: int,
  temperature: float,
) -> np.ndarray:
  """Weighted kNN class predictions `[Q]` from normalised `[Q, D]` / `[G, D]` features."""
  scores, idx = retrieval.topk_cosine(query, gallery, k)
  weights = np.exp(scores.astype(np.float64) / temperature)  # [Q, k]
  votes = np.zeros((query.shape[0], num_classes))
  np.add.at(votes, (np.arange(query.shape[0])[:, None], gallery_labels[idx]), weights)
  return votes.argmax(axis=1)


def monitor_metrics(
  embed_fn: EmbedFn,
  gallery_data: DataSource,
  query_data: DataSource,
  *,
  knn_k: int = 20,
  knn_temperature: float = 0.07,
  recall_ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
  """One monitoring evaluation; returns `{'monitor/knn_top1', 'monitor/R@1', ...}`."""
  fresh = lambda d: d() if callable(d) else d
  gal = extract_features(embed_fn, fresh(gallery_data))
  qry = extract_features(embed_fn, fresh(query_data))
  g = retrieval.video_embeddings(gal['features'])
  q = retrieval.video_embeddings(qry['features'])
  num_classes = int(max(gal['labels'].max(), qry['labels'].max())) + 1
  pred = knn_predict(q, g, gal['labels'], num_classes, knn_k, knn_temperature)
  out = {'monitor/knn_top1': float((pred == qry['labels']).mean())}
  res = retrieval.retrieve(q, qry['labels'], g, gal['labels'], ks=recall_ks)
  out.update({f'monitor/R@{k}': v for k, v in res.recall.items()})
  return out


@dataclasses.dataclass
class OnlineMonitor:
  """Periodic monitor: `monitor(step, embed_fn)` returns scalars every `every_steps`, else {}."""

  gallery_data: DataSource
  query_data: DataSource
  every_steps: int = 1000
  knn_k: int = 20
  knn_temperature: float = 0.07
  recall_ks: tuple[int, ...] = (1, 5)

  def __post_init__(self):
    if self.every_steps < 1:
      raise ValueError(f'OnlineMonitor.every_steps={self.every_steps}: need >= 1')

  def __call__(self, step: int, embed_fn: EmbedFn) -> dict[str, float]:
    if step % self.every_steps:
      return {}
    return monitor_metrics(
      embed_fn,
      self.gallery_data,
      self.query_data,
      knn_k=self.knn_k,
      knn_temperature=self.knn_temperature,
      recall_ks=self.recall_ks,
    )

"""The frozen-feature evaluations in one call: retrieval, linear probe, shuffle sensitivity.

`evaluate_frozen` extracts (or loads from the cache) per-clip features of the train and test
splits once, then runs the requested protocols on them, each into its own sub-directory of
`out_dir` (`retrieval/`, `linear_probe/`, `shuffle/`, every one with results.json / results.md),
draws the R@k curve and a PCA plot of the test embeddings, and writes `summary.md`: the
`reports.compare` row of this run. Finetuning trains the network, so it is a separate call
(`finetune.finetune`) that writes into `out_dir/finetune/`; `compare` picks it up from there.

On several hosts every process runs all of this (feature extraction is one sharded computation
over all devices, `features.sharded_apply`), and only process 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax

from jaxvssl.evaluation import features as F
from jaxvssl.evaluation import linear_probe as lp
from jaxvssl.evaluation import plots, reports, retrieval, shuffle

PROTOCOLS = ('retrieval', 'linear_probe', 'shuffle')
DataSource = Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]]


def _fresh(data: DataSource) -> Iterable[Mapping[str, Any]]:
  return data() if callable(data) else data


def evaluate_frozen(
  embed_fn: F.EmbedFn,
  train_data: DataSource,
  test_data: DataSource,
  out_dir: str | os.PathLike,
  *,
  protocols: Sequence[str] = PROTOCOLS,
  run_name: str | None = None,
  cache_dir: str | os.PathLike | None = None,
  checkpoint: str | os.PathLike | None = None,
  eval_config: Mapping[str, Any] | None = None,
  linear_probe_config: lp.LinearProbeConfig | Mapping[str, Any] | None = None,
  recall_ks: Sequence[int] = retrieval.RECALL_KS,
  shuffle_seed: int = shuffle.DEFAULT_SEED,
  shuffle_group_size: int = shuffle.DEFAULT_GROUP_SIZE,
  make_plots: bool = True,
) -> dict[str, float]:
  """Runs the frozen-backbone protocols; returns all their metrics in one dict.

  Args:
    embed_fn: `clips [B, T, H, W, C] -> [B, D]` (e.g. `features.make_backbone_embed_fn`).
    train_data / test_data: eval-pipeline batches (re-iterable or zero-argument callables);
      test_data is read twice when 'shuffle' is requested.
    cache_dir: if set, features are cached there under a fingerprint of (`checkpoint`,
      `eval_config`, split[, shuffle seed/group]), so a second call extracts nothing.
  """
  unknown = sorted(set(protocols) - set(PROTOCOLS))
  if unknown:
    raise ValueError(f'evaluate_frozen: unknown protocols {unknown}; known {PROTOCOLS}')
  out_dir = os.fspath(out_dir)
  run_name = run_name or os.path.basename(os.path.normpath(out_dir))
  is_main = jax.process_index() == 0
  # Process 0 writes; the others compute the same numbers (they take part in the extraction).
  out = lambda sub: os.path.join(out_dir, sub) if is_main else None
  make_plots = make_plots and is_main

  def get(split: str, data: DataSource, fn: F.EmbedFn, extra: Mapping[str, Any] | None = None):
    extract = lambda: F.extract_features(fn, _fresh(data))
    if cache_dir is None:
      return extract()
    cfg = {**dict(eval_config or {}), **dict(extra or {})}
    fingerprint = F.feature_fingerprint(checkpoint, cfg, split)
    return F.cached_features(cache_dir, fingerprint, extract, save=is_main)

  train = get('train', train_data, embed_fn)
  test = get('test', test_data, embed_fn)
  metrics: dict[str, float] = {}
  if 'retrieval' in protocols:
    m = retrieval.evaluate_retrieval(train, test, out('retrieval'), ks=recall_ks, run_name=run_name)
    metrics.update(m)
    if make_plots:
      plots.plot_recall_curves(
        {run_name: {k.split('/')[-1]: v for k, v in m.items()}},
        os.path.join(out_dir, 'retrieval', 'recall_at_k.png'),
      )
  if make_plots:
    plots.plot_embedding(
      test['features'], test['labels'], os.path.join(out_dir, 'embedding_test.png')
    )
  if 'linear_probe' in protocols or 'shuffle' in protocols:
    m, probe = lp.evaluate_linear_probe(
      train, test, linear_probe_config, out('linear_probe'), run_name=run_name
    )
    metrics.update(m)
    if 'shuffle' in protocols:
      shuffled = get(
        'test',
        test_data,
        shuffle.shuffled_embed_fn(embed_fn, shuffle_seed, shuffle_group_size),
        {'shuffle_seed': shuffle_seed, 'shuffle_group_size': shuffle_group_size},
      )
      metrics.update(
        shuffle.evaluate_shuffle_sensitivity(
          probe,
          test,
          shuffled,
          out('shuffle'),
          run_name=run_name,
          details={'seed': shuffle_seed, 'group_size': shuffle_group_size},
        )
      )
  if is_main:
    reports.compare([out_dir], os.path.join(out_dir, 'summary.md'))
  return metrics

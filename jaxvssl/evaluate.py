"""`jaxvssl evaluate` and `jaxvssl compare`: the evaluation suite run on a pretraining run.

For one run (or the same backbone at random initialisation) this extracts per-clip features of
the train and test splits once (N uniformly spaced clips per video, center crop, no video
dropped), then runs
  retrieval            test queries, train gallery, R@1/5/10/20/50        -> OUT/retrieval/
  linear probe         grid chosen on a train-carved validation split     -> OUT/linear_probe/
  shuffle sensitivity  the same probe on temporally shuffled test clips  -> OUT/shuffle/
  finetune (optional)  whole network from the pretrained weights         -> OUT/finetune/
and draws the embedding plot and a retrieval gallery. Each protocol writes results.json and
results.md; `compare` merges them into one table (rows = runs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxvssl import config as config_lib, export
from jaxvssl.evaluation import features as features_lib
from jaxvssl.evaluation import linear_probe, plots, reports, retrieval, shuffle

GALLERY_QUERIES = 4
GALLERY_NEIGHBOURS = 3


def _eval_dataset(config: ml_collections.ConfigDict, split: str, num_clips: int | None = None,
                  source: Any = None):
  from jaxvssl.data import pipeline  # pylint: disable=g-import-not-at-top
  e = config.evaluation
  return pipeline.make_eval_dataset(
      config.data, split, batch_size=e.batch_size, num_clips=num_clips or e.num_clips,
      num_frames=config.data.num_frames, stride=config.data.stride, source=source)


def extract_split(config: ml_collections.ConfigDict, split: str, embed_fn: export.EmbedFn
                  ) -> features_lib.Features:
  """Per-clip features `[V, N, D]` of every video of `split`."""
  return features_lib.extract_features(embed_fn, _eval_dataset(config, split).as_numpy_iterator())


def _frames_of(config: ml_collections.ConfigDict, split: str, video_ids: Sequence[str]
               ) -> dict[str, np.ndarray]:
  """The first eval clip `[T, H, W, 3]` of a few videos, decoding only those videos."""
  from jaxvssl.data import pipeline  # pylint: disable=g-import-not-at-top
  from jaxvssl.data.tf_setup import import_tensorflow  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow()
  wanted = tf.constant(sorted(set(video_ids)))
  source = pipeline.load_split(config.data, split, 0, 1).filter(
      lambda ex: tf.reduce_any(tf.equal(ex['video_id'], wanted)))
  out = {}
  for batch in _eval_dataset(config, split, num_clips=1, source=source).as_numpy_iterator():
    for clip, vid, valid in zip(batch['clips'], batch['video_id'], batch['valid']):
      if valid:
        out[vid.decode() if isinstance(vid, bytes) else str(vid)] = clip[0]
  return out


def _gallery_plot(config, train_f, test_f, out_dir: str, class_names) -> str:
  queries = retrieval.video_embeddings(test_f['features'])
  gallery = retrieval.video_embeddings(train_f['features'])
  # Evenly spread queries over the test set, so several classes show up.
  picks = np.linspace(0, len(queries) - 1, min(GALLERY_QUERIES, len(queries))).astype(int)
  _, neighbours = retrieval.topk_cosine(queries[picks], gallery, GALLERY_NEIGHBOURS)
  test_ids = [str(test_f['video_ids'][i]) for i in picks]
  train_ids = [[str(train_f['video_ids'][j]) for j in row] for row in neighbours]
  test_frames = _frames_of(config, config.data.eval_split, test_ids)
  train_frames = _frames_of(config, config.data.train_split, [i for row in train_ids for i in row])
  return plots.plot_retrieval_gallery(
      [test_frames[i] for i in test_ids], [int(test_f['labels'][i]) for i in picks],
      [[train_frames[i] for i in row] for row in train_ids],
      [[int(train_f['labels'][j]) for j in row] for row in neighbours],
      os.path.join(out_dir, 'retrieval_gallery.png'), class_names=class_names)


def _class_names(config: ml_collections.ConfigDict) -> list[str] | None:
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from jaxvssl.data import builders  # pylint: disable=g-import-not-at-top,unused-import
    builder = tfds.builder(config.data.name, data_dir=config.data.data_dir)
    return list(builder.info.features['label'].names)
  except Exception:  # pylint: disable=broad-except
    return None  # plots fall back to class indices


def evaluate_run(workdir: str, out_dir: str | None = None, *, random_init: bool = False,
                 step: int | None = None, finetune: bool = False,
                 overrides: Sequence[str] = (), run_name: str | None = None) -> dict[str, float]:
  """Runs every configured protocol on a run's backbone (or its random initialisation).

  Args:
    workdir: a pretraining run directory (holds config.json and checkpoints/).
    out_dir: where results go (default `workdir/eval` or `workdir/eval_random_init`).
    random_init: evaluate the same architecture, randomly initialised with the run's seed.
    step: checkpoint step (default: the latest).
    finetune: also finetune the whole network (slow; `config.evaluation.finetune` does the same).
    overrides: `key=value` config overrides for evaluation (e.g. `evaluation.num_clips=10`).
    run_name: the row name in reports (default: the output directory's name).
  Returns:
    All metrics, merged.
  """
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(config_path):
    raise FileNotFoundError(f'{config_path} does not exist: is {workdir!r} a jaxvssl run directory?')
  config = config_lib.config_from_json(config_path)
  if overrides:
    config.unlock()
    config = config_lib.validate(config_lib.apply_overrides(config, overrides))
  if random_init:
    embed_fn = export.random_init_embed_fn(config)
    source = 'random initialisation (seed %d)' % config.seed
  else:
    _, method, params, state, step = export.load_run(workdir, step)
    embed_fn = export.embed_fn_from_state(config, method, params, state)
    source = f'checkpoint step {step}'
  out_dir = out_dir or os.path.join(workdir, 'eval_random_init' if random_init else 'eval')
  run_name = run_name or os.path.basename(os.path.normpath(out_dir))
  e = config.evaluation
  t0 = time.perf_counter()
  print(f'[jaxvssl] evaluating {workdir} ({source}) -> {out_dir}', flush=True)

  train_f = extract_split(config, config.data.train_split, embed_fn)
  test_f = extract_split(config, config.data.eval_split, embed_fn)
  print(f'[jaxvssl] features: train {train_f["features"].shape}, test {test_f["features"].shape} '
        f'({time.perf_counter() - t0:.0f} s)', flush=True)
  results: dict[str, float] = {}
  results.update(retrieval.evaluate_retrieval(train_f, test_f, os.path.join(out_dir, 'retrieval'),
                                              ks=tuple(e.ks), run_name=run_name))
  if e.linear_probe or e.shuffle_sensitivity:
    probe_metrics, probe = linear_probe.evaluate_linear_probe(
        train_f, test_f, out_dir=os.path.join(out_dir, 'linear_probe'), run_name=run_name)
    results.update(probe_metrics)
    if e.shuffle_sensitivity:
      shuffled_f = features_lib.extract_features(
          shuffle.shuffled_embed_fn(embed_fn),
          _eval_dataset(config, config.data.eval_split).as_numpy_iterator())
      results.update(shuffle.evaluate_shuffle_sensitivity(
          probe, test_f, shuffled_f, os.path.join(out_dir, 'shuffle'), run_name=run_name))
  if finetune or e.finetune:
    results.update(_finetune(workdir, config, out_dir, random_init, step, run_name))

  class_names = _class_names(config)
  plots.plot_embedding(test_f['features'], test_f['labels'],
                       os.path.join(out_dir, 'embedding_pca.png'), class_names=class_names)
  _gallery_plot(config, train_f, test_f, out_dir, class_names)
  with open(os.path.join(out_dir, 'summary.json'), 'w') as f:
    json.dump({'run': run_name, 'workdir': os.path.abspath(workdir), 'source': source,
               'metrics': results, 'seconds': time.perf_counter() - t0}, f, indent=2)
  print(reports.comparison_table([(run_name, results)]), flush=True)
  return results


def _finetune(workdir, config, out_dir, random_init, step, run_name) -> dict[str, float]:
  from jaxvssl.evaluation import finetune  # pylint: disable=g-import-not-at-top
  return finetune.finetune_run(workdir, config, os.path.join(out_dir, 'finetune'),
                               random_init=random_init, step=step, run_name=run_name)


def compare_runs(paths: Sequence[str], out_dir: str, names: Sequence[str] | None = None) -> str:
  """One table of several evaluations (markdown, also written to OUT/comparison.md) + R@k plot."""
  os.makedirs(out_dir, exist_ok=True)
  runs = [reports.collect_run(p) for p in paths]
  if names:
    if len(names) != len(runs):
      raise ValueError(f'--names has {len(names)} names for {len(runs)} runs')
    runs = [(n, m) for n, (_, m) in zip(names, runs)]
  table = reports.comparison_table(runs)
  with open(os.path.join(out_dir, 'comparison.md'), 'w') as f:
    f.write(table)
  recalls = {n: {k: v for k, v in m.items() if k.startswith('retrieval/R@')} for n, m in runs}
  if any(recalls.values()):
    plots.plot_recall_curves({n: r for n, r in recalls.items() if r},
                             os.path.join(out_dir, 'recall_at_k.png'))
  return table

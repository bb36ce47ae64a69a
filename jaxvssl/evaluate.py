"""`jaxvssl evaluate` and `jaxvssl compare`: the evaluation suite run on a pretraining run.

For one run (or the same backbone at random initialisation) this optionally re-estimates the
backbone's BatchNorm statistics on natural training clips (`evaluation.recompute_bn_batches`),
then extracts per-clip features of the train and test splits once (N uniformly spaced clips per video, center crop, no video
dropped), then runs
  retrieval            test queries, train gallery, R@1/5/10/20/50        -> OUT/retrieval/
  linear probe         grid chosen on a train-carved validation split     -> OUT/linear_probe/
  shuffle sensitivity  the same probe on temporally shuffled test clips  -> OUT/shuffle/
  pretext diagnostics  the method's loss metrics on its views of test videos -> OUT/pretext/
  finetune (optional)  whole network from the pretrained weights         -> OUT/finetune/
and draws the embedding plot and a retrieval gallery. Each protocol writes results.json and
results.md; `compare` merges them into one table (rows = runs).

Feature extraction and finetuning run on every device (a mesh with one 'data' axis, as in
pretraining; `devices=` narrows it); with `config.multihost` every host of a pod takes part and
process 0 writes. The run directory and the output directory may be `gs://` paths.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from etils import epath

from jaxvssl import config as config_lib
from jaxvssl import errors, hub, parallel, runs
from jaxvssl import workdir as workdir_lib
from jaxvssl.evaluation import features as features_lib
from jaxvssl.evaluation import finetune as finetune_lib
from jaxvssl.evaluation import plots, reports, suite
from jaxvssl.evaluation import pretext as pretext_lib
from jaxvssl.inputs import pipeline, reading
from jaxvssl.methods import base
from jaxvssl.tf_setup import import_tensorflow

# After jaxvssl.inputs: TensorFlow must have its GPUs hidden (jaxvssl.tf_setup) before TFDS loads it.
import tensorflow_datasets as tfds

GALLERY_QUERIES = 4
GALLERY_NEIGHBOURS = 3


def _eval_dataset(
  config: ml_collections.ConfigDict, split: str, num_clips: int | None = None, source: Any = None
):
  e = config.evaluation
  return pipeline.make_eval_dataset(
    config.data,
    split,
    batch_size=e.batch_size,
    num_clips=num_clips or e.num_clips,
    num_frames=config.data.num_frames,
    stride=config.data.stride,
    source=source,
  )


def _first_clips(
  config: ml_collections.ConfigDict, split: str, video_ids: Sequence[str]
) -> dict[str, np.ndarray]:
  """The first eval clip `[T, H, W, 3]` of a few videos, decoding only those videos."""
  tf = import_tensorflow()
  wanted = tf.constant(sorted(set(video_ids)))
  source = reading.load_split(config.data, split).filter(
    lambda ex: tf.reduce_any(tf.equal(ex['video_id'], wanted))
  )
  out = {}
  for batch in _eval_dataset(config, split, num_clips=1, source=source).as_numpy_iterator():
    for clip, vid, valid in zip(batch['clips'], batch['video_id'], batch['valid']):
      if valid:
        out[vid.decode() if isinstance(vid, bytes) else str(vid)] = clip[0]
  return out


def gallery_plot(
  config: ml_collections.ConfigDict, out_dir: str, class_names: Sequence[str] | None
) -> str:
  """Query clips and their top-3 train neighbours, from `retrieval/retrieval_per_query.json`."""
  rows = json.loads((epath.Path(out_dir) / 'retrieval' / 'retrieval_per_query.json').read_text())
  # Evenly spread queries over the test set, so several classes show up.
  picks = [
    rows[i] for i in np.linspace(0, len(rows) - 1, min(GALLERY_QUERIES, len(rows))).astype(int)
  ]
  queries = _first_clips(config, config.data.eval_split, [r['query_id'] for r in picks])
  neighbours = _first_clips(
    config, config.data.train_split, [i for r in picks for i in r['topk_ids'][:GALLERY_NEIGHBOURS]]
  )
  return plots.plot_retrieval_gallery(
    [queries[r['query_id']] for r in picks],
    [r['query_label'] for r in picks],
    [[neighbours[i] for i in r['topk_ids'][:GALLERY_NEIGHBOURS]] for r in picks],
    [r['topk_labels'][:GALLERY_NEIGHBOURS] for r in picks],
    os.path.join(out_dir, 'retrieval_gallery.png'),
    class_names=class_names,
  )


def _class_names(config: ml_collections.ConfigDict) -> list[str] | None:
  try:
    builder = tfds.builder(config.data.name, data_dir=config.data.data_dir)
    return list(builder.info.features['label'].names)
  except Exception:  # pylint: disable=broad-except
    return None  # plots fall back to class indices


def evaluate_run(
  workdir: str,
  out_dir: str | None = None,
  *,
  random_init: bool = False,
  step: int | None = None,
  finetune: bool = False,
  overrides: Sequence[str] = (),
  run_name: str | None = None,
  weights: str | None = None,
  devices: Sequence[jax.Device] | None = None,
) -> dict[str, float]:
  """Runs every configured protocol on a run's backbone (or its random initialisation).

  Args:
    workdir: a pretraining run directory (holds config.json and checkpoints/).
    out_dir: where results go (default `workdir/eval` or `workdir/eval_random_init`).
    random_init: evaluate the same architecture, randomly initialised with the run's seed.
    step: checkpoint step (default: the latest).
    finetune: also finetune the whole network (slow; `config.evaluation.finetune` does the same).
    overrides: `key=value` config overrides for evaluation (e.g. `evaluation.num_clips=10`).
    run_name: the row name in reports (default: the output directory's name).
    weights: `FILE[:backbone]`, an exported weights file (`jaxvssl export`, or a torchvision
      state dict) whose backbone is evaluated instead of the run's checkpoint, with the run's
      data and protocols (e.g. to check that an exported backbone gives the run's numbers).
    devices: the devices feature extraction and finetuning are sharded over (default: all).
  Returns:
    All metrics, merged.
  """
  config_path = epath.Path(workdir) / 'config.json'
  if not config_path.exists():
    raise errors.DataNotFoundError(
      f'{config_path} does not exist: is {workdir!r} a jaxvssl run directory?'
    )
  config = config_lib.config_from_json(config_path)
  if overrides:
    config.unlock()
    config = config_lib.validate(config_lib.apply_overrides(config, overrides))
  parallel.maybe_initialize_distributed(config.multihost)  # before any other JAX call
  mesh = parallel.make_mesh(None if devices is None else list(devices))
  is_main = jax.process_index() == 0
  # evaluation.recompute_bn_batches > 0: BatchNorm statistics re-estimated on natural clips first.
  bn_batches = runs.natural_clip_batches(config) if config.evaluation.recompute_bn_batches else None
  if weights:
    path, backbone = base.parse_init_from(weights)
    module, variables = hub.load(path, backbone)
    embed_fn = features_lib.make_backbone_embed_fn(
      module,
      variables,
      batch_size=config.evaluation.batch_size * config.evaluation.num_clips,
      feature=config.evaluation.feature,
      mesh=mesh,
    )
    source = f'weights file {weights}'
    checkpoint = None
    networks = None  # an exported backbone has no pretext heads
  elif random_init:
    embed_fn = runs.random_init_embed_fn(config, bn_batches=bn_batches, mesh=mesh)
    source = f'random initialisation (seed {config.seed})'
    checkpoint = None
    # The pretext heads at initialisation; built only when they are measured.
    networks = (*runs.random_init(config), 0) if config.evaluation.pretext_batches else None
  else:
    run = runs.load_run(workdir, step)
    step = run.step
    embed_fn = runs.embed_fn_from_state(
      config, run.method, run.params, run.state, bn_batches=bn_batches, mesh=mesh
    )
    source = f'checkpoint step {step}'
    checkpoint = os.path.join(workdir, 'checkpoints', str(step))
    networks = (run.method, run.params, run.state, step)
  out_dir = out_dir or os.path.join(workdir, 'eval_random_init' if random_init else 'eval')
  run_name = run_name or os.path.basename(os.path.normpath(out_dir))
  e = config.evaluation
  t0 = time.perf_counter()
  print(f'[jaxvssl] evaluating {workdir} ({source}) -> {out_dir}', flush=True)

  protocols = ['retrieval']
  protocols += ['linear_probe'] if e.linear_probe else []
  protocols += ['shuffle'] if e.shuffle_sensitivity else []
  results = suite.evaluate_frozen(
    embed_fn,
    lambda: _eval_dataset(config, config.data.train_split).as_numpy_iterator(),
    lambda: _eval_dataset(config, config.data.eval_split).as_numpy_iterator(),
    out_dir,
    protocols=protocols,
    run_name=run_name,
    recall_ks=tuple(e.ks),
    cache_dir=None if random_init else os.path.join(out_dir, 'features'),
    checkpoint=checkpoint,
    eval_config={'data': config.data.to_dict(), 'evaluation': e.to_dict()},
  )
  if networks is not None and e.pretext_batches:
    pretext = runs.held_out_pretext(config, *networks)
    if pretext and is_main:
      pretext_lib.write_results(
        os.path.join(out_dir, 'pretext'),
        pretext,
        {'split': config.data.eval_split, 'batches': e.pretext_batches, 'step': networks[3]},
      )
    results.update(pretext)
  if finetune or e.finetune:
    results.update(
      finetune_run(
        workdir,
        config,
        os.path.join(out_dir, 'finetune'),
        random_init=random_init,
        step=step,
        run_name=run_name,
        finetune_config=config.finetune.to_dict(),
        mesh=mesh,
      )
    )
  if is_main:  # the other processes computed the same numbers
    gallery_plot(config, out_dir, _class_names(config))
    summary = {
      'run': run_name,
      'workdir': os.fspath(workdir_lib.resolve(workdir)),
      'source': source,
      'metrics': results,
      'seconds': time.perf_counter() - t0,
    }
    (epath.Path(out_dir) / 'summary.json').write_text(json.dumps(summary, indent=2))
    print(reports.comparison_table([(run_name, results)]), flush=True)
  return results


def finetune_run(
  workdir: str,
  config: ml_collections.ConfigDict,
  out_dir: str | os.PathLike,
  *,
  random_init: bool = False,
  step: int | None = None,
  run_name: str | None = None,
  finetune_config: finetune_lib.FinetuneConfig | Mapping[str, Any] | None = None,
  num_classes: int | None = None,
  mesh: Any = None,
) -> dict[str, float]:
  """Finetunes the backbone of a pretraining run (or its random initialisation) on its data set.

  Train data: `make_train_dataset(config.data, [ViewSpec(FINETUNE_VIEW, config.data.num_frames,
  config.data.stride)], global_batch_size=batch_size, seed=config.seed, start_step=s)` (random
  resized crop and the usual augmentation, drop_remainder; this process's share, from the step
  a resumed finetuning continues at); steps_per_epoch = train videos // batch_size.
  Eval data: `make_eval_dataset(config.data, config.data.eval_split,
  num_clips=config.evaluation.num_clips)` (uniform clips, center crop, no video dropped).
  The protocol itself is `jaxvssl.evaluation.finetune.finetune`.

  Args:
    workdir: the pretraining run (config.json + checkpoints/).
    config: its (possibly overridden) config.
    out_dir: receives metrics.jsonl, checkpoints/ (a rerun resumes from them), results.json,
      results.md.
    random_init: start from the run's architecture at random initialisation instead.
    step: checkpoint step (default latest).
    finetune_config: `FinetuneConfig` or a dict of its fields (default: the paper protocol);
      `num_train_examples` and `input_key` are filled in here.
    num_classes: default: the data set's ClassLabel size (TFDS data set info).
    mesh: the devices to shard over (`jaxvssl.parallel.make_mesh`; default all).
  """
  if random_init:
    method, params, state = runs.random_init(config)
  else:
    run = runs.load_run(workdir, step)
    method, params, state = run.method, run.params, run.state
  backbone = method.backbone()
  backbone_variables = method.backbone_variables(params, state)

  if isinstance(finetune_config, finetune_lib.FinetuneConfig):
    fields = dataclasses.asdict(finetune_config)
  else:
    fields = dict(finetune_config or {})
    known = {f.name for f in dataclasses.fields(finetune_lib.FinetuneConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
      raise KeyError(f'finetune_run: unknown FinetuneConfig keys {unknown}')
  fields['input_key'] = finetune_lib.FINETUNE_VIEW
  fields.setdefault('progress_bar', config.progress_bar)
  fields['num_train_examples'] = reading.local_split(
    config.data, config.data.train_split
  ).num_examples
  cfg = finetune_lib.FinetuneConfig(**fields)

  if num_classes is None:
    # A built data set describes itself (TFDS reads its info from the files): no builder code.
    info = tfds.builder(config.data.name, data_dir=config.data.data_dir).info
    num_classes = info.features['label'].num_classes

  view = pipeline.ViewSpec(
    finetune_lib.FINETUNE_VIEW, num_frames=config.data.num_frames, stride=config.data.stride
  )

  def train(start_step: int):
    return pipeline.make_train_dataset(
      config.data,
      [view],
      global_batch_size=cfg.batch_size,
      seed=config.seed,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
      start_step=start_step,
    ).as_numpy_iterator()

  evaluation = pipeline.make_eval_dataset(
    config.data,
    config.data.eval_split,
    batch_size=config.evaluation.batch_size,
    num_clips=config.evaluation.num_clips,
    num_frames=config.data.num_frames,
    stride=config.data.stride,
  ).as_numpy_iterator()
  metrics, _, _ = finetune_lib.finetune(
    backbone,
    backbone_variables,
    train,
    evaluation,
    num_classes,
    cfg,
    out_dir,
    run_name=run_name,
    mesh=mesh,
  )
  return metrics


def compare_runs(paths: Sequence[str], out_dir: str, names: Sequence[str] | None = None) -> str:
  """One table of several evaluations (markdown, also written to OUT/comparison.md) + R@k plot."""
  epath.Path(out_dir).mkdir(parents=True, exist_ok=True)
  collected = [reports.collect_run(p) for p in paths]
  if names:
    if len(names) != len(collected):
      raise ValueError(f'--names has {len(names)} names for {len(collected)} runs')
    collected = [(n, m) for n, (_, m) in zip(names, collected)]
  table = reports.comparison_table(collected)
  (epath.Path(out_dir) / 'comparison.md').write_text(table)
  recalls = {n: {k: v for k, v in m.items() if k.startswith('retrieval/R@')} for n, m in collected}
  if any(recalls.values()):
    plots.plot_recall_curves(
      {n: r for n, r in recalls.items() if r}, os.path.join(out_dir, 'recall_at_k.png')
    )
  return table

"""Small shared helpers for tests: tiny configs and deterministic fake batches."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np

from jaxvssl import config as config_lib


def tiny_config(method: str = 'moco', **overrides):
  """A config small enough for a CPU train step in about a second."""
  config = config_lib.base_config(method)
  config.data.num_frames = 4
  config.data.stride = 1
  config.data.crop_size = 16
  config.model.backbone = 'r3d10'
  config.model.width_multiplier = 1 / 16
  config.batch_size = 8
  config.num_steps = 4
  config.log_every_steps = 1
  config.checkpoint_every_steps = 2
  config.async_checkpointing = False
  config.progress_bar = False
  config.optim.warmup_steps = 1
  if method == 'moco':
    config.moco.queue_size = 32
    config.moco.head_hidden_dim = 16
    config.moco.embed_dim = 8
    config.moco.momentum = 0.9
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for p in path:
      node = node[p]
    node[last] = value
  return config_lib.validate(config)


def fake_batches(
  config, method, start_step: int = 0, seed: int = 0, nan_at_step: int | None = None
) -> Iterator[dict[str, np.ndarray]]:
  """Batch `s` is a pure function of (seed, s), like the real pipeline's stream."""
  example = method.example_batch(config.batch_size)
  step = start_step
  while True:
    rng = np.random.default_rng([seed, step])
    batch = {
      k: rng.normal(size=v.shape).astype(np.asarray(v).dtype)
      if np.asarray(v).dtype.kind == 'f'
      else rng.integers(0, 2, size=v.shape).astype(np.asarray(v).dtype)
      for k, v in example.items()
    }
    batch['label'] = rng.integers(0, 4, size=(config.batch_size,)).astype(np.int32)
    if nan_at_step is not None and step == nan_at_step:
      first = next(iter(example))
      batch[first][:] = np.nan
    yield batch
    step += 1


def run_training(config, workdir, devices, stop_after=None, batches=None, **batch_kwargs):
  """`train.train_and_evaluate` on synthetic batches, without data files.

  `batches(config, method, start_step, **batch_kwargs)` yields the batches (default
  `fake_batches`, a method's stream; e.g. `nan_at_step=` goes to it).
  """
  from jaxvssl import methods, train  # pylint: disable=g-import-not-at-top

  batches = batches or fake_batches
  method = methods.build(config, len(devices))
  return train.train_and_evaluate(
    config,
    str(workdir),
    devices=devices,
    stop_after_steps=stop_after,
    batches_fn=lambda s: batches(config, method, s, **batch_kwargs),
  )


def logged_steps(workdir) -> dict[int, dict]:
  """The training records of a run's metrics.jsonl (those with a loss), by step."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return {r['step']: r for r in map(json.loads, f) if 'loss' in r}


def assert_train_states_equal(a, b, rtol=1e-6, atol=1e-7):
  """Two `TrainState`s (e.g. straight vs interrupted-and-resumed) agree in every part a resume
  must restore: params, optimizer state, method state (queues, momentum encoders), rng, step."""
  import jax  # pylint: disable=g-import-not-at-top

  for part in ('params', 'opt_state', 'state', 'rng', 'step'):
    for x, y in zip(
      jax.tree_util.tree_leaves(getattr(a, part)), jax.tree_util.tree_leaves(getattr(b, part))
    ):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=part)


def check_devices_and_resume(
  config,
  tmp_path,
  loss_keys,
  *,
  compare='params',
  rtol=1e-3,
  atol=1e-4,
  batches=None,
):
  """The slow multi-device test body every method shares: a 3-step run on 1 device and on 8 give
  the same `loss_keys` at every step and `compare` ('params' or 'state') within rtol / atol
  (float32 reassociation over 8 shards); interrupted after step 1 and resumed, it equals the
  straight run in every part a resume restores. Returns (the 1-device final state, its records)
  for the method's own checks."""
  import jax  # pylint: disable=g-import-not-at-top

  assert jax.device_count() >= 8, 'conftest must fake 8 CPU devices'
  devices = jax.devices()
  one = run_training(config, tmp_path / 'one', devices[:1], batches=batches)
  a = logged_steps(tmp_path / 'one')
  assert sorted(a) == [1, 2, 3]
  eight = run_training(config, tmp_path / 'eight', devices[:8], batches=batches)
  b = logged_steps(tmp_path / 'eight')
  for step in a:
    for key in loss_keys:
      np.testing.assert_allclose(a[step][key], b[step][key], rtol=1e-4, atol=1e-5, err_msg=key)
  for x, y in zip(
    jax.tree_util.tree_leaves(getattr(one, compare)),
    jax.tree_util.tree_leaves(getattr(eight, compare)),
  ):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=compare)
  run_training(config, tmp_path / 'resumed', devices[:1], stop_after=1, batches=batches)
  resumed = run_training(config, tmp_path / 'resumed', devices[:1], batches=batches)
  c = logged_steps(tmp_path / 'resumed')
  np.testing.assert_allclose([a[s]['loss'] for s in a], [c[s]['loss'] for s in a], rtol=1e-6)
  assert_train_states_equal(one, resumed)
  return one, a

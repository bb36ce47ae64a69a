"""What a method is: the views it needs, the networks it builds, how its loss is combined.

A method does not re-implement the loop, the data reading or the objectives. The training loop
(`jaxvssl/train.py`) owns optimisation, sharding, checkpoints and logging; it calls

  params, state = method.init(rng, batch)                      # once (abstractly for restore)
  params, state = method.load_pretrained(params, state, load_run)  # fresh start only, outside jit
  params, state = load_init_from(method, params, state, load_run)  # config.init_from, same place
  loss, (metrics, state) = method.loss_fn(params, state, batch, rng, step)   # inside jit+grad
  state = method.after_update(params, state, step)             # e.g. momentum encoders (EMA)

`params` are the trainable parameters (the optimizer sees exactly these); `state` holds
everything else that must survive a restart: BatchNorm statistics, momentum encoders, queues and
their pointers, frozen networks. Both are pytrees of arrays, replicated over the mesh.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvssl import models
from jaxvssl.errors import ConfigError, PretrainedWeightsError
from jaxvssl.interop import files as weight_files
from jaxvssl.inputs import pipeline
from jaxvssl.objectives import l2_normalize

PyTree = Any
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class RestoredRun:
  """A pretraining run restored from its directory (`jaxvssl.runs.load_run`)."""

  config: ml_collections.ConfigDict
  method: Method
  params: PyTree
  state: PyTree
  step: int


# `(workdir, step or None for the latest) -> RestoredRun`, handed to `Method.load_pretrained` by
# the loop, so that a method can read another run without importing the layer that loads runs.
LoadRun = Callable[[str, 'int | None'], RestoredRun]


class Method(abc.ABC):
  """Base class of every self-supervised method."""

  name: ClassVar[str]

  def __init__(self, config: ml_collections.ConfigDict, num_devices: int = 1):
    self.config = config
    self.num_devices = num_devices

  # --- configuration ---------------------------------------------------------------------------
  @classmethod
  @abc.abstractmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    """The defaults of `config.<name>`; every key a user may set."""

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    """Raises `jaxvssl.errors.ConfigError` naming the key for impossible values."""
    del config  # the base method has no section of its own

  # --- data --------------------------------------------------------------------------------------
  @abc.abstractmethod
  def views(self) -> Sequence[Any]:
    """The `jaxvssl.inputs.views.ViewSpec`s the input pipeline must build for a training batch."""

  def extras(self) -> Sequence[Any]:
    """Per-example TF functions adding labels (permutations, segment indices...)."""
    return ()

  def train_dataset(
    self,
    *,
    global_batch_size: int,
    seed: int,
    process_index: int,
    process_count: int,
    start_step: int,
    source: Any = None,
  ) -> Any:
    """This process's training stream (a tf.data.Dataset of local batches) at `start_step`.

    The default builds `self.views()` and `self.extras()` from videos; a method on other inputs
    (e.g. CACL's frame-encoder stage on single frames) overrides it.
    """
    return pipeline.make_train_dataset(
      self.config.data,
      self.views(),
      global_batch_size=global_batch_size,
      seed=seed,
      process_index=process_index,
      process_count=process_count,
      start_step=start_step,
      source=source,
      extras=self.extras(),
      # The loop finishes uint8 / device-augmented views on the device (inputs/device.py).
      device_transfer=True,
    )

  def example_batch(self, batch_size: int) -> dict[str, jax.Array]:
    """Zeros shaped like a training batch (init and restore need shapes only)."""
    size = self.config.data.crop_size
    return {
      view.name: jnp.zeros((batch_size, view.num_frames, size, size, 3), jnp.float32)
      for view in self.views()
    }

  # --- networks and loss -------------------------------------------------------------------------
  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> tuple[PyTree, PyTree]:
    """Returns (params, state) for a batch of the shapes the pipeline produces."""

  @abc.abstractmethod
  def loss_fn(
    self,
    params: PyTree,
    state: PyTree,
    batch: dict[str, jax.Array],
    rng: jax.Array,
    step: jax.Array,
  ) -> tuple[jax.Array, tuple[Metrics, PyTree]]:
    """Scalar loss, scalar metrics and the new state (BN statistics, queues)."""

  def load_pretrained(
    self, params: PyTree, state: PyTree, load_run: LoadRun
  ) -> tuple[PyTree, PyTree]:
    """Replaces initialised variables by pretrained ones (e.g. CACL's frozen frame encoder).

    Called by the loop once after `init`, outside jit, and only when a run starts fresh: a resumed
    run restores these variables from its own checkpoint, so the source may be gone by then. The
    default loads nothing.
    """
    del load_run
    return params, state

  def pretrained_runs(self) -> dict[str, str]:
    """`{config key: run directory}` that `load_pretrained` reads on a fresh start.

    The loop checks they exist before any data is read, so a missing one fails in seconds.
    """
    return {}

  def after_update(self, params: PyTree, state: PyTree, step: jax.Array) -> PyTree:
    """Called with the updated params after each optimizer step (momentum encoders)."""
    del params, step
    return state

  @abc.abstractmethod
  def backbone_variables(self, params: PyTree, state: PyTree) -> dict[str, PyTree]:
    """The variables of the network kept for downstream use (`self.backbone()`)."""

  def set_backbone_variables(
    self, params: PyTree, state: PyTree, variables: dict[str, PyTree]
  ) -> tuple[PyTree, PyTree]:
    """(params, state) with the downstream backbone's variables replaced (`config.init_from`).

    The inverse of `backbone_variables`. The default fits the layout of MoCo, SCVRL and CACL: the
    backbone is submodule 'backbone' of `params` and of `state['batch_stats']`, and of the
    momentum copies `state['key_params']` / `state['key_batch_stats']` when they have one (a
    momentum encoder starts equal to the query encoder, so it gets the same weights). A method
    with another layout overrides it.
    """
    if not isinstance(params, dict) or 'backbone' not in params:
      raise PretrainedWeightsError(
        f'config.init_from: method {self.name!r} keeps no params/backbone; it cannot be '
        'initialised from a backbone file'
      )
    stats = variables.get('batch_stats', {})
    params = dict(params, backbone=variables['params'])
    state = dict(state)
    for key, value in (
      ('batch_stats', stats),
      ('key_params', variables['params']),
      ('key_batch_stats', stats),
    ):
      if isinstance(state.get(key), dict) and 'backbone' in state[key]:
        # A copy each: the loop donates the train state, and one buffer in two places of it
        # fails the step ("donate the same buffer twice").
        state[key] = dict(state[key], backbone=jax.tree_util.tree_map(jnp.array, value))
    return params, state

  # --- shared helpers ------------------------------------------------------------------------
  def backbone(self) -> nn.Module:
    """The video backbone of `config.model` (the one evaluated downstream)."""
    return build_backbone(self.config, self.num_devices)


def build_backbone(
  config: ml_collections.ConfigDict,
  num_devices: int = 1,
  bn_groups: int | None = None,
  **kwargs: Any,
) -> nn.Module:
  """`config.model` -> flax module; per-device BatchNorm uses one statistics group per device.

  `bn_groups` (optional) overrides the number of BatchNorm statistics groups that
  `config.model.bn_mode` implies (e.g. CACL's `cacl.bn_groups`: ghost batches on one device);
  `kwargs` are backbone constructor arguments a method sets (e.g. SCVRL's MViT `pool`), applied
  over `config.model.kwargs` and inside any input wrapper.
  """
  m = config.model
  if bn_groups is None:
    bn_groups = num_devices if m.bn_mode == 'per_device' else 1
  return models.get_backbone(
    m.backbone,
    input_mode=m.input_mode,
    input_group_size=m.input_group_size,
    width_multiplier=m.width_multiplier,
    bn_groups=bn_groups,
    dtype=jnp.dtype(m.dtype),
    **{**dict(m.kwargs), **kwargs},
  )


def backbone_meta(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """What rebuilds and feeds `config`'s backbone: the sidecar of an exported file (its core)."""
  m, d = config.model, config.data
  return dict(
    backbone=m.backbone,
    width_multiplier=float(m.width_multiplier),
    input_mode=m.input_mode,
    input_group_size=int(m.input_group_size),
    model_kwargs=dict(m.kwargs),
    crop_size=int(d.crop_size),
    num_frames=int(d.num_frames),
    mean=list(d.mean),
    std=list(d.std),
  )


def _leaf_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  """'path' -> shape of every leaf (arrays or ShapeDtypeStructs)."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in flat}


def load_stage_run(
  load_run: LoadRun,
  workdir: str,
  step: int | None,
  *,
  method: str,
  config_file: str,
  where: str,
) -> RestoredRun:
  """The run of an earlier stage (CACL's `frames`, rate_order's `view_synthesis`).

  Args:
    load_run: the loop's run loader (`jaxvssl.runs.load_run`).
    workdir: the stage's run directory. step: a checkpoint step (None: the latest).
    method: the method that stage must have run. config_file: its config, for the hint.
    where: how error messages name the directory and the config key that points at it.
  Raises:
    PretrainedWeightsError naming `where` and what to do: no directory given, no run or checkpoint
    there, a checkpoint that does not restore, a run of another method.
  """
  if not workdir:
    raise PretrainedWeightsError(f'{where}: no directory given; run the {method} stage first')
  try:
    run = load_run(workdir, step)
  except (FileNotFoundError, ConfigError) as e:
    raise PretrainedWeightsError(
      f'{where}: {e}. Run the {method} stage first, e.g. '
      f'`jaxvssl train --config={config_file}:<variant> --workdir={workdir}`.'
    ) from e
  except (ValueError, KeyError) as e:  # orbax: a checkpoint that does not match its config
    raise PretrainedWeightsError(
      f'{where}: could not restore checkpoint step {step or "latest"}: {e}'
    ) from e
  if run.config.method != method:
    raise PretrainedWeightsError(f'{where}: it is a {run.config.method!r} run, not a {method} run')
  return run


def describe_mismatch(expected: Any, found: Any, limit: int = 5) -> str:
  """'' when both trees have the same leaves and shapes; otherwise what differs (a few keys)."""
  e, f = _leaf_shapes(expected), _leaf_shapes(found)
  problems = [f'missing {k} {e[k]}' for k in sorted(set(e) - set(f))]
  problems += [f'unexpected {k} {f[k]}' for k in sorted(set(f) - set(e))]
  problems += [
    f'{k}: expected shape {e[k]}, found {f[k]}' for k in sorted(set(e) & set(f)) if e[k] != f[k]
  ]
  if not problems:
    return ''
  more = f' (and {len(problems) - limit} more)' if len(problems) > limit else ''
  return '; '.join(problems[:limit]) + more


def parse_init_from(spec: str) -> tuple[str, str | None]:
  """'PATH[:backbone]' -> (PATH, backbone or None); a suffix that is no backbone name stays."""
  path, sep, name = spec.rpartition(':')
  if sep and name in models.available_backbones():
    return path, name
  return spec, None


def check_init_from(config: ml_collections.ConfigDict) -> None:
  """Fails before any data is read when `config.init_from` names nothing on disk."""
  if not config.init_from:
    return
  path, _ = parse_init_from(config.init_from)
  if not os.path.exists(path):
    raise PretrainedWeightsError(
      f'config.init_from={config.init_from!r}: {path} does not exist (an exported file, a '
      'torchvision state dict or a jaxvssl run directory)'
    )


def read_init_from(
  config: ml_collections.ConfigDict, load_run: LoadRun
) -> tuple[dict[str, PyTree], dict[str, Any]]:
  """(backbone variables, meta) named by `config.init_from`: a file or a run directory."""
  path, backbone = parse_init_from(config.init_from)
  if os.path.isdir(path):
    try:
      run = load_run(path, None)
    except (FileNotFoundError, ValueError) as e:
      raise PretrainedWeightsError(f'config.init_from={config.init_from!r}: {e}') from e
    variables = jax.tree_util.tree_map(
      np.asarray, run.method.backbone_variables(run.params, run.state)
    )
    meta = backbone_meta(run.config)
    if backbone is not None and meta['backbone'] != backbone:
      raise PretrainedWeightsError(
        f'config.init_from={config.init_from!r}: the run trained {meta["backbone"]!r}, '
        f'not {backbone!r}'
      )
    return variables, meta
  return weight_files.read_weights(path, backbone)


def load_init_from(
  method: Method, params: PyTree, state: PyTree, load_run: LoadRun
) -> tuple[PyTree, PyTree]:
  """(params, state) with the backbone initialised from `config.init_from` (if set).

  Every variable must be there with its shape, and nothing else, unless
  `config.init_from_partial=True`: then the variables that fit are loaded and the others keep
  their initialisation (both listed on stdout). Another backbone, width or input mode is an error
  either way (the weights would not mean the same).
  """
  config = method.config
  if not config.init_from:
    return params, state
  where = f'config.init_from={config.init_from!r}'
  variables, meta = read_init_from(config, load_run)
  want = backbone_meta(config)
  for key in ('backbone', 'width_multiplier', 'input_mode'):
    if key in meta and meta[key] != want[key]:
      raise PretrainedWeightsError(
        f'{where}: the weights are for model.{key}={meta[key]!r}, this run has {want[key]!r}'
      )
  expected = method.backbone_variables(params, state)
  variables = {c: t for c, t in variables.items() if t or c in expected}
  mismatch = describe_mismatch(expected, variables)
  if mismatch and not config.init_from_partial:
    raise PretrainedWeightsError(
      f'{where}: variables do not match {config.model.backbone}: {mismatch} '
      '(config.init_from_partial=True loads the variables that fit)'
    )
  loaded = _leaf_shapes(variables)

  def pick(path, old):
    name = jax.tree_util.keystr(path)
    if loaded.get(name) != tuple(np.shape(old)):
      return old
    node = variables
    for key in path:
      node = node[key.key]
    return jnp.asarray(node, dtype=old.dtype)

  merged = jax.tree_util.tree_map_with_path(pick, expected)
  if mismatch:
    print(f'[jaxvssl] {where}: partial load; not loaded: {mismatch}', flush=True)
  print(f'[jaxvssl] backbone initialised from {config.init_from}', flush=True)
  return method.set_backbone_variables(params, state, merged)


def ema(momentum_tree: PyTree, online_tree: PyTree, momentum: float) -> PyTree:
  """Momentum-encoder update: m * key + (1 - m) * query, leaf by leaf."""
  return jax.tree_util.tree_map(
    lambda k, q: momentum * k + (1.0 - momentum) * q, momentum_tree, online_tree
  )


@flax.struct.dataclass
class Queue:
  """A FIFO of L2-normalised keys, `[size, dim]`, and its write pointer."""

  keys: jax.Array
  pointer: jax.Array

  @classmethod
  def create(cls, rng: jax.Array, size: int, dim: int) -> 'Queue':
    # Random unit vectors, as in MoCo: the first steps see uninformative negatives.
    return cls(
      keys=l2_normalize(jax.random.normal(rng, (size, dim))), pointer=jnp.zeros((), jnp.int32)
    )

  def push(self, new_keys: jax.Array) -> 'Queue':
    """Writes `new_keys` [n, dim] (n divides size, checked at config load) at the pointer."""
    n = new_keys.shape[0]
    keys = jax.lax.dynamic_update_slice(
      self.keys, new_keys.astype(self.keys.dtype), (self.pointer, 0)
    )
    return Queue(keys=keys, pointer=(self.pointer + n) % self.keys.shape[0])


def shuffled_apply(fn, x: jax.Array, rng: jax.Array | None):
  """Shuffle-BN (MoCo): run `fn` on a random permutation of the batch, then undo it.

  With per-device BatchNorm statistics the keys of a sample are then normalised with the
  statistics of other samples than its query, which removes the BN shortcut. With global
  statistics it is a no-op and is skipped (`rng=None`).
  """
  if rng is None:
    return fn(x)
  perm = jax.random.permutation(rng, x.shape[0])
  inverse = jnp.argsort(perm)
  out, aux = fn(x[perm])
  return jax.tree_util.tree_map(lambda o: o[inverse], out), aux


def submodule_variables(params: PyTree, batch_stats: PyTree, name: str) -> dict[str, PyTree]:
  """The variables of submodule `name` (e.g. the backbone inside an encoder-with-head)."""
  variables = {'params': params[name]}
  if name in batch_stats:
    variables['batch_stats'] = batch_stats[name]
  return variables

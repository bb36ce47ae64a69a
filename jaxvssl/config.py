"""Config schema, loading and validation.

Every experiment is an `ml_collections.ConfigDict` produced by a file under `configs/` with a
`get_config(arg)` function. A config is checked against the schema built by `base_config(method)`
when it is loaded: a key that the schema does not know, a missing key, a value of the wrong type or
an impossible value fails at once with the dotted key named (a typo must never silently fall back
to a default and cost a day of compute).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ml_collections
from etils import epath

from jaxvssl import methods as methods_lib
from jaxvssl import models
from jaxvssl.errors import ConfigError
from jaxvssl.evaluation import finetune as finetune_lib
from jaxvssl.inputs import data_config

ConfigDict = ml_collections.ConfigDict

# Sections whose keys are free-form (not in the schema): any key may be set, also by a
# `--config.<section>.<new key>=value` override. Their values are checked by `check_values`.
FREE_FORM_SECTIONS = ('model.kwargs', 'optim.lr_multipliers')


def data_defaults() -> ConfigDict:
  """The data section (`jaxvssl.inputs.data_config.default_data_config()`)."""
  return data_config.default_data_config()


def model_defaults() -> ConfigDict:
  return ConfigDict(
    dict(
      backbone='r3d18',  # any name of jaxvssl.models.available_backbones()
      width_multiplier=1.0,  # < 1 gives the narrow CPU variants
      input_mode='rgb',  # 'rgb' | 'residual' (frame differences) | 'group_residual'
      input_group_size=2,  # 'group_residual': each frame minus the mean of its group of this many
      bn_mode='global',  # 'global': statistics over the global batch; 'per_device'
      dtype='float32',  # computation dtype: 'float32' | 'bfloat16'
      kwargs=ConfigDict(),  # extra backbone constructor arguments (e.g. stem='mlfo')
    )
  )


def optim_defaults() -> ConfigDict:
  return ConfigDict(
    dict(
      name='sgd',  # 'sgd' | 'adam' | 'adamw'
      base_learning_rate=0.01,  # learning rate at `reference_batch_size`
      reference_batch_size=256,  # lr = base_learning_rate * batch_size / reference_batch_size
      scale_learning_rate=True,  # linear scaling rule (Goyal et al.); printed at start
      momentum=0.9,  # sgd only
      nesterov=False,
      b1=0.9,  # adam / adamw
      b2=0.999,
      weight_decay=1e-4,  # sgd/adam: L2 added to the gradient; adamw: decoupled
      schedule='cosine',  # 'cosine' | 'step' | 'constant'
      warmup_steps=0,
      warmup_init_fraction=0.0,  # warmup starts at this fraction of the peak lr
      final_fraction=0.0,  # cosine ends at this fraction of the peak lr
      step_boundaries=(),  # 'step': fractions of num_steps where lr *= step_factor
      step_factor=0.1,
      grad_clip_norm=0.0,  # 0 disables
      # Top-level parameter subtree name -> learning-rate multiplier (e.g. transformer=0.01);
      # free-form keys, settable from the command line; empty: one learning rate for all.
      lr_multipliers=ConfigDict(),
    )
  )


def base_config(method: str) -> ConfigDict:
  """The full schema, with defaults, for one method."""
  method_class = methods_lib.get_method_class(method)
  c = ConfigDict()
  c.method = method
  c.seed = 0
  c.batch_size = 64  # global batch, over all devices and hosts
  c.num_steps = 1000
  c.log_every_steps = 10
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 3
  c.async_checkpointing = True
  c.multihost = False  # call jax.distributed.initialize() at start
  c.progress_bar = True  # a tqdm bar when stdout is a terminal
  # 'PATH[:backbone]': initialise the backbone (fresh start only) from a `jaxvssl export` file,
  # a torchvision state dict (.pt/.pth, backbone required) or another run directory.
  c.init_from = ''
  c.init_from_partial = False  # True: load the variables that fit, keep init for the rest
  c.data = data_defaults()
  c.model = model_defaults()
  c.optim = optim_defaults()
  c.monitor = ConfigDict(
    dict(
      every_steps=0,  # 0 disables online kNN/retrieval monitoring
      num_train_videos=64,
      num_test_videos=32,
      num_clips=2,
    )
  )
  c.evaluation = ConfigDict(
    dict(
      num_clips=10,
      batch_size=8,
      feature='pooled',  # 'pooled' (last pooling layer) | 'pool5' (spatial max-pool)
      ks=(1, 5, 10, 20, 50),
      linear_probe=True,
      shuffle_sensitivity=True,
      finetune=False,
      # > 0: before extracting features, re-estimate the backbone's BatchNorm running statistics
      # as the mean batch statistics of this many batches of natural (unshuffled) training clips.
      recompute_bn_batches=0,
      # Pretext diagnostics on held-out clips (evaluation/pretext.py): this many training-size
      # batches of the method's own views of test videos through its loss (0: off).
      pretext_batches=10,
    )
  )
  c.finetune = ConfigDict(
    dict(  # jaxvssl.evaluation.finetune.FinetuneConfig (paper protocol)
      epochs=150,
      batch_size=128,
      learning_rate=0.1,
      momentum=0.9,
      weight_decay=5e-4,
      dropout=0.5,
      optimizer='sgd',  # 'sgd' | 'adamw'
      checkpoint_every_steps=0,  # 0: once per epoch; a rerun resumes from the newest
    )
  )
  setattr(c, method, method_class.defaults())
  return c


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _type_ok(default: Any, value: Any) -> bool:
  if default is None or value is None:
    return True
  if isinstance(default, bool) or isinstance(value, bool):
    return isinstance(default, bool) == isinstance(value, bool)
  if isinstance(default, (int, float)) and isinstance(value, (int, float)):
    # An int default accepts only ints; a float default accepts ints too.
    return isinstance(default, float) or isinstance(value, int)
  if isinstance(default, (tuple, list)) and isinstance(value, (tuple, list)):
    return True
  return isinstance(value, type(default))


def check_keys(
  config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = 'config'
) -> None:
  """Raises ConfigError for unknown keys, missing keys and wrong types, naming the key.

  The keys of `FREE_FORM_SECTIONS` are not checked here (only that the section is a section).
  """
  for key in config.keys():
    if key not in schema:
      close = [k for k in schema.keys() if k[:3] == key[:3]]
      hint = f' (did you mean {close}?)' if close else ''
      raise ConfigError(
        f'{prefix}.{key} is not a known key{hint}; known keys: {sorted(schema.keys())}'
      )
  for key, default in schema.items():
    if key not in config:
      raise ConfigError(f'{prefix}.{key} is missing')
    value = config[key]
    name = f'{prefix}.{key}'
    if isinstance(default, (ConfigDict, dict)):
      if not isinstance(value, (ConfigDict, dict)):
        raise ConfigError(f'{name} must be a section, got {value!r}')
      if name.removeprefix('config.') in FREE_FORM_SECTIONS:
        continue
      check_keys(value, default, name)
    elif not _type_ok(default, value):
      raise ConfigError(
        f'{name}={value!r} has type {type(value).__name__}; '
        f'expected {type(default).__name__} like the default {default!r}'
      )


def _require(ok: bool, key: str, value: Any, why: str) -> None:
  if not ok:
    raise ConfigError(f'config.{key}={value!r}: {why}')


def check_values(config: ConfigDict) -> None:
  """Cross-field checks that the types alone cannot express."""
  _require(config.batch_size > 0, 'batch_size', config.batch_size, 'must be positive')
  _require(config.num_steps > 0, 'num_steps', config.num_steps, 'must be positive')
  _require(
    config.log_every_steps > 0, 'log_every_steps', config.log_every_steps, 'must be positive'
  )
  _require(
    config.checkpoint_every_steps > 0,
    'checkpoint_every_steps',
    config.checkpoint_every_steps,
    'must be positive',
  )
  _require(
    config.keep_checkpoints >= 1, 'keep_checkpoints', config.keep_checkpoints, 'must be >= 1'
  )
  o = config.optim
  _require(
    o.name in ('sgd', 'adam', 'adamw'), 'optim.name', o.name, "must be 'sgd', 'adam' or 'adamw'"
  )
  _require(
    o.schedule in ('cosine', 'step', 'constant'),
    'optim.schedule',
    o.schedule,
    "must be 'cosine', 'step' or 'constant'",
  )
  _require(
    o.base_learning_rate > 0, 'optim.base_learning_rate', o.base_learning_rate, 'must be positive'
  )
  _require(
    0 <= o.warmup_steps < config.num_steps,
    'optim.warmup_steps',
    o.warmup_steps,
    f'must be in [0, num_steps={config.num_steps})',
  )
  _require(
    all(0 < b < 1 for b in o.step_boundaries),
    'optim.step_boundaries',
    o.step_boundaries,
    'must be fractions of num_steps in (0, 1)',
  )
  _require(o.weight_decay >= 0, 'optim.weight_decay', o.weight_decay, 'must be >= 0')
  for name, multiplier in o.lr_multipliers.items():
    _require(
      isinstance(multiplier, (int, float)) and not isinstance(multiplier, bool) and multiplier >= 0,
      f'optim.lr_multipliers.{name}',
      multiplier,
      'must be a number >= 0 (the factor on the learning rate of that parameter subtree)',
    )
  m = config.model
  _require(
    m.bn_mode in ('global', 'per_device'),
    'model.bn_mode',
    m.bn_mode,
    "must be 'global' or 'per_device'",
  )
  _require(
    m.dtype in ('float32', 'bfloat16'), 'model.dtype', m.dtype, "must be 'float32' or 'bfloat16'"
  )
  _require(m.width_multiplier > 0, 'model.width_multiplier', m.width_multiplier, 'must be positive')

  _require(
    m.backbone in models.available_backbones(),
    'model.backbone',
    m.backbone,
    f'unknown backbone; known: {models.available_backbones()}',
  )
  _require(
    m.input_mode in models.INPUT_MODES,
    'model.input_mode',
    m.input_mode,
    f'must be one of {models.INPUT_MODES}',
  )
  _require(
    m.input_mode == 'rgb' or config.data.num_frames >= 2,
    'model.input_mode',
    m.input_mode,
    f'needs data.num_frames >= 2 (frame differences), got {config.data.num_frames}',
  )
  _require(
    m.input_mode != 'group_residual'
    or (m.input_group_size >= 2 and config.data.num_frames % m.input_group_size == 0),
    'model.input_group_size',
    m.input_group_size,
    f'must be >= 2 and divide data.num_frames={config.data.num_frames}',
  )
  data_config.check_data_config(config.data)  # the one check of every data key
  e = config.evaluation
  _require(
    e.feature in ('pooled', 'pool5'), 'evaluation.feature', e.feature, "must be 'pooled' or 'pool5'"
  )
  _require(e.num_clips > 0, 'evaluation.num_clips', e.num_clips, 'must be positive')
  _require(
    config.finetune.optimizer in finetune_lib.OPTIMIZERS,
    'finetune.optimizer',
    config.finetune.optimizer,
    f'must be one of {finetune_lib.OPTIMIZERS}',
  )
  _require(
    config.finetune.checkpoint_every_steps >= 0,
    'finetune.checkpoint_every_steps',
    config.finetune.checkpoint_every_steps,
    'must be >= 0 (0: once per epoch)',
  )
  _require(
    e.pretext_batches >= 0,
    'evaluation.pretext_batches',
    e.pretext_batches,
    'must be >= 0 (0: no pretext diagnostics on held-out clips)',
  )
  _require(
    e.recompute_bn_batches >= 0,
    'evaluation.recompute_bn_batches',
    e.recompute_bn_batches,
    'must be >= 0 (0: keep the trained BatchNorm statistics)',
  )
  methods_lib.get_method_class(config.method).validate_config(config)


def validate(config: ConfigDict) -> ConfigDict:
  """Checks `config` against the schema of its method; returns it locked (no new keys)."""
  if 'method' not in config:
    raise ConfigError('config.method is missing')
  check_keys(config, base_config(config.method))
  check_values(config)
  config.lock()
  return config


def require_divisible(config: ConfigDict, num_devices: int) -> None:
  """The global batch must split evenly over the data axis of the mesh."""
  _require(
    config.batch_size % num_devices == 0,
    'batch_size',
    config.batch_size,
    f'must be divisible by the number of devices ({num_devices})',
  )


# ---------------------------------------------------------------------------------------------
# Loading and saving
# ---------------------------------------------------------------------------------------------


def _parse_override_value(text: str) -> Any:
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    lowered = text.lower()
    if lowered in ('true', 'false'):
      return lowered == 'true'
    if lowered in ('none', 'null'):
      return None
    if text.startswith('(') and text.endswith(')'):
      inner = text[1:-1].strip()
      return tuple(_parse_override_value(x.strip()) for x in inner.split(',') if x.strip())
    return text


def apply_overrides(config: ConfigDict, overrides: Sequence[str]) -> ConfigDict:
  """Applies `key.sub=value` overrides; an unknown key fails with the key named."""
  for item in overrides:
    if '=' not in item:
      raise ConfigError(f'override {item!r} must look like key.sub=value')
    key, text = item.split('=', 1)
    key = key.removeprefix('--').removeprefix('config.')
    parts = key.split('.')
    node = config
    for i, part in enumerate(parts[:-1]):
      if part not in node or not isinstance(node[part], ConfigDict):
        raise ConfigError(f'override config.{".".join(parts[: i + 1])} is not a known section')
      node = node[part]
    free_form = '.'.join(parts[:-1]) in FREE_FORM_SECTIONS
    if parts[-1] not in node and not free_form:
      raise ConfigError(
        f'override config.{key} is not a known key; known keys here: {sorted(node.keys())}'
      )
    value = _parse_override_value(text)
    old = node[parts[-1]] if parts[-1] in node else None
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
      value = tuple(value)
    with node.ignore_type():
      node[parts[-1]] = value
  return config


@contextlib.contextmanager
def package_root_on_path(path: str) -> Iterator[None]:
  """Lets a config file in a package import its siblings (`from configs import common`).

  The directory above the outermost package (`__init__.py`) holding `path` is put first on
  `sys.path` while the file runs, as big_vision's configs import `big_vision.configs.common`.
  """
  root = os.path.dirname(os.path.abspath(path))
  if not os.path.exists(os.path.join(root, '__init__.py')):
    yield
    return
  while os.path.exists(os.path.join(os.path.dirname(root), '__init__.py')):
    root = os.path.dirname(root)
  root = os.path.dirname(root)
  sys.path.insert(0, root)
  try:
    yield
  finally:
    sys.path.remove(root)


def load_config(spec: str, overrides: Sequence[str] = ()) -> ConfigDict:
  """Loads `path/to/config.py[:arg]`, applies overrides and validates.

  Args:
    spec: a config file path, optionally followed by `:arg` passed to its `get_config(arg)`.
    overrides: `key.sub=value` strings (JSON values; tuples as `(1,2)`).
  """
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise ConfigError(f'config file {path!r} does not exist')
  module_spec = importlib.util.spec_from_file_location(f'_jaxvssl_config_{abs(hash(path))}', path)
  module = importlib.util.module_from_spec(module_spec)
  with package_root_on_path(path):
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
  if not hasattr(module, 'get_config'):
    raise ConfigError(f'config file {path!r} has no get_config(arg) function')
  try:
    config = module.get_config(arg) if arg else module.get_config()
  except ConfigError:
    raise
  except (KeyError, ValueError) as e:
    raise ConfigError(f'{path}:{arg}: {e}') from e
  apply_overrides(config, overrides)
  try:
    return validate(config)
  except ConfigError as e:
    raise ConfigError(f'{path}{":" + arg if arg else ""}: {e}') from None


def save_config(config: ConfigDict, workdir: str | os.PathLike) -> str:
  """Writes the resolved config into the workdir (config.json) and returns its path.

  `workdir` may be on an object store (`gs://...`, through `etils.epath`).
  """
  path = epath.Path(workdir) / 'config.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  return os.fspath(path)


def _flatten(node: Any, prefix: str = '') -> dict[str, Any]:
  if isinstance(node, (ConfigDict, dict)):
    out = {}
    for key, value in node.items():
      out.update(_flatten(value, f'{prefix}{key}.'))
    return out
  return {prefix[:-1]: tuple(node) if isinstance(node, list) else node}


def _schema_defaults(method: Any) -> dict[str, Any]:
  """Flattened defaults of `method`'s schema ({} for an unknown method)."""
  try:
    return _flatten(base_config(method))
  except (ConfigError, KeyError, ValueError, TypeError):
    return {}


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """`['model.input_mode: 'rgb' -> 'residual'', ...]`: the leaves that differ, by dotted key.

  A key absent from `old` whose value in `new` is its schema default is no difference: `old`
  was written before the key existed, and a new key's default keeps the old behaviour.
  """
  a, b = _flatten(old), _flatten(new)
  defaults = _schema_defaults(new.get('method'))
  absent = '<absent>'
  return [
    f'{k}: {a.get(k, absent)!r} -> {b.get(k, absent)!r}'
    for k in sorted(set(a) | set(b))
    if a.get(k, absent) != b.get(k, absent)
    and not (k not in a and k in defaults and b.get(k, absent) == defaults[k])
  ]


def _fill_new_keys(node: ConfigDict, schema: Mapping[str, Any], prefix: str) -> list[str]:
  """Adds the schema keys `node` lacks, with their defaults; returns their dotted names."""
  added = []
  for key, default in schema.items():
    name = f'{prefix}.{key}'
    if key not in node:
      node[key] = copy.deepcopy(default)
      added.append(name)
    elif (
      isinstance(default, ConfigDict)
      and isinstance(node[key], ConfigDict)
      and name.removeprefix('config.') not in FREE_FORM_SECTIONS
    ):
      added += _fill_new_keys(node[key], default, name)
  return added


def config_from_json(path: str | os.PathLike) -> ConfigDict:
  """Reads a config written by `save_config` (tuples come back as tuples) and validates it."""
  raw = json.loads(epath.Path(path).read_text())

  def to_config(node: Any, schema: Any) -> Any:
    if isinstance(node, dict):
      sub = schema if isinstance(schema, (ConfigDict, dict)) else {}
      return ConfigDict({k: to_config(v, sub.get(k) if sub else None) for k, v in node.items()})
    if isinstance(node, list) and (schema is None or isinstance(schema, tuple)):
      return tuple(node)
    if isinstance(node, float) and math.isnan(node):
      return node
    return node

  schema = base_config(raw.get('method', ''))
  config = to_config(raw, schema)
  # A run written before a config key existed: that key gets its default, which by the rule for
  # new keys reproduces the behaviour the run was trained with. Unknown keys still fail.
  added = _fill_new_keys(config, schema, 'config')
  if added:
    print(
      f'[jaxvssl] note: {path} predates the config keys {", ".join(added)}; using their defaults',
      flush=True,
    )
  return validate(config)

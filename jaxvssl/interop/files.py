"""Backbone variable files: `.npz` or flax msgpack, plus a JSON sidecar `FILE.json`.

The variables are a backbone's `{'params': ..., 'batch_stats': ...}` (nested dicts of arrays, the
tree `module.apply` takes). `.npz` stores each leaf under its '/'-joined path
('params/stem_conv/conv/kernel'), so NumPy alone reads it; msgpack is flax's own serialisation.
The sidecar says how to rebuild the module and feed it (`jaxvssl.hub.load`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import flax.serialization
import numpy as np

from jaxvssl.errors import PretrainedWeightsError

FORMATS = ('npz', 'msgpack', 'torch')


def sidecar_path(path: str) -> str:
  """`FILE.json` beside `FILE`."""
  return path + '.json'


def format_of(path: str) -> str:
  """'npz', 'msgpack' or 'torch' from the file name ('.pt' / '.pth' are torch)."""
  ext = os.path.splitext(path)[1].lower()
  if ext in ('.pt', '.pth'):
    return 'torch'
  if ext in ('.npz', '.msgpack'):
    return ext[1:]
  raise PretrainedWeightsError(
    f'{path}: unknown weights format {ext!r}; use .npz, .msgpack, or .pt/.pth (torchvision)'
  )


def flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, np.ndarray]:
  """Nested dicts -> {'a/b/c': array}."""
  out = {}
  for key, value in tree.items():
    if '/' in key:
      raise PretrainedWeightsError(f'variable name {prefix}{key!r} contains "/"')
    if isinstance(value, dict):
      out.update(flatten(value, f'{prefix}{key}/'))
    else:
      out[f'{prefix}{key}'] = np.asarray(value)
  return out


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
  """{'a/b/c': array} -> nested dicts."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split('/')
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def save_variables(path: str, variables: dict[str, Any], meta: dict[str, Any]) -> str:
  """Writes `variables` as `.npz` or `.msgpack` (by `path`'s extension) and `path.json`.

  Returns the sidecar's path. Writes go to a temporary name first, so an interrupted export
  never leaves a truncated file under the final name.
  """
  fmt = format_of(path)
  if fmt == 'torch':
    raise PretrainedWeightsError(f'{path}: torch files are written by jaxvssl.interop.torch')
  variables = {k: v for k, v in variables.items() if v}  # no empty 'batch_stats' for MViT
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    if fmt == 'npz':
      np.savez(f, **flatten(variables))
    else:
      f.write(flax.serialization.msgpack_serialize(flatten_to_numpy(variables)))
  os.replace(tmp, path)
  return write_sidecar(path, dict(meta, format=fmt))


def flatten_to_numpy(tree: Any) -> Any:
  """The same nested dicts with NumPy leaves (msgpack writes NumPy arrays exactly)."""
  if isinstance(tree, dict):
    return {k: flatten_to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)


def write_sidecar(path: str, meta: dict[str, Any]) -> str:
  side = sidecar_path(path)
  with open(side + '.tmp', 'w') as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  os.replace(side + '.tmp', side)
  return side


def read_sidecar(path: str) -> dict[str, Any]:
  """The sidecar of `path`; a missing or unreadable one is an error naming it."""
  side = sidecar_path(path)
  if not os.path.exists(side):
    raise PretrainedWeightsError(
      f'{side} does not exist: {path} has no sidecar (write files with `jaxvssl export`; for a '
      'torchvision state dict name the backbone, PATH:r3d18)'
    )
  try:
    with open(side) as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise PretrainedWeightsError(f'{side}: not a readable JSON sidecar: {e}') from e
  missing = [k for k in ('backbone',) if k not in meta]
  if missing:
    raise PretrainedWeightsError(f'{side}: missing key {missing[0]!r}')
  return meta


def read_variables(path: str) -> dict[str, Any]:
  """The variables in a `.npz` / `.msgpack` file as nested dicts of NumPy arrays.

  Raises PretrainedWeightsError naming the file when it is missing or cannot be decoded.
  """
  fmt = format_of(path)
  if not os.path.isfile(path):
    raise PretrainedWeightsError(f'{path} does not exist')
  if fmt == 'torch':
    from jaxvssl.interop import torch as torch_lib  # pylint: disable=g-import-not-at-top

    return torch_lib.load_state_dict(path)  # a state dict: the caller converts it
  try:
    if fmt == 'npz':
      with np.load(path, allow_pickle=False) as data:
        return unflatten({k: data[k] for k in data.files})
    with open(path, 'rb') as f:
      tree = flax.serialization.msgpack_restore(f.read())
  except Exception as e:  # zipfile, msgpack and NumPy raise many types for one corrupt file
    raise PretrainedWeightsError(f'{path}: not a readable {fmt} weights file ({e})') from e
  if not isinstance(tree, dict):
    raise PretrainedWeightsError(f'{path}: not a readable msgpack weights file (no dict)')
  return flatten_to_numpy(tree)


def bare(variables: dict[str, Any], input_mode: str) -> dict[str, Any]:
  """The wrapped backbone's own variables: an input wrapper ('residual', 'group_residual') holds
  them under 'backbone' (`jaxvssl.models.ResidualInput`); 'rgb' variables are already bare."""
  if input_mode == 'rgb':
    return variables
  return {c: tree['backbone'] for c, tree in variables.items() if 'backbone' in tree}


def wrapped(variables: dict[str, Any], input_mode: str) -> dict[str, Any]:
  """The inverse of `bare`."""
  if input_mode == 'rgb':
    return variables
  return {c: {'backbone': tree} for c, tree in variables.items()}


def read_weights(path: str, backbone: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
  """(variables, meta) of an exported file or of a torchvision state dict.

  Args:
    path: `.npz` / `.msgpack` with its sidecar, or `.pt` / `.pth` (a torchvision state dict,
      e.g. Kinetics-400 weights; converted by `jaxvssl.interop.torch.from_torchvision`).
    backbone: the backbone the caller expects. Required for a torch file without a sidecar;
      otherwise checked against the sidecar.
  Returns:
    variables: {'params', 'batch_stats'} as the module of `meta` takes them (NumPy).
    meta: the sidecar (for a bare torch file: backbone, width 1, input mode 'rgb').
  """
  fmt = format_of(path)
  if not os.path.isfile(path):
    raise PretrainedWeightsError(f'{path} does not exist')
  has_sidecar = os.path.exists(sidecar_path(path))
  if fmt == 'torch' and not has_sidecar:
    if backbone is None:
      raise PretrainedWeightsError(
        f'{path}: a torch state dict has no sidecar naming its backbone; give it as '
        f'{path}:r3d18, {path}:r2plus1d18 or {path}:mvit_b'
      )
    # torchvision's Kinetics-400 video weights: 16 frames at 112 px (MViT-B: 224 px, the size
    # of its position embeddings), normalised with its video mean / std.
    meta: dict[str, Any] = dict(
      backbone=backbone,
      width_multiplier=1.0,
      input_mode='rgb',
      model_kwargs={},
      crop_size=224 if backbone.startswith('mvit') else 112,
      num_frames=16,
      mean=[0.43216, 0.394666, 0.37645],
      std=[0.22803, 0.22145, 0.216989],
      format='torch',
    )
  else:
    meta = read_sidecar(path)
  if backbone is not None and meta['backbone'] != backbone:
    raise PretrainedWeightsError(
      f'{path}: holds backbone {meta["backbone"]!r} ({sidecar_path(path)}), not {backbone!r}'
    )
  variables = read_variables(path)
  if fmt == 'torch':
    from jaxvssl.interop import torch as torch_lib  # pylint: disable=g-import-not-at-top

    try:
      variables = torch_lib.from_torchvision(variables, meta['backbone'])
    except PretrainedWeightsError as e:
      raise PretrainedWeightsError(f'{path}: {e}') from e
    variables = wrapped(variables, meta.get('input_mode', 'rgb'))
  return variables, meta

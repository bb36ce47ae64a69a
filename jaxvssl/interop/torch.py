"""PyTorch (torchvision) <-> jaxvssl conversion of video backbones.

  to_torchvision(variables, backbone) -> state_dict    jaxvssl {'params', 'batch_stats'} -> torch
  from_torchvision(state_dict, backbone) -> variables  torchvision state dict -> jaxvssl

Supported: 'r3d18' <-> `torchvision.models.video.r3d_18`, 'r2plus1d18' <-> `r2plus1d_18`
(torchvision widths, stem 'torchvision', stem_temporal (3, 1)), 'mvit_b' <-> `mvit_v1_b` (16x4,
224 px: torchvision's position embeddings are for its 8 x 56 x 56 token grid). 'mvit_b_scvrl'
(SCVRL's kt=2 cube embedding) converts partially, as `mvit_v1_b` without the cube embedding's
kernel (`PARTIAL`): torchvision has no 2x7x7 embedding. `to_torchvision` leaves `conv_proj.weight`
out (load with `strict=False`); `from_torchvision` returns every variable but
`params/patch_embed/kernel` (start a run from it with `init_from_partial=True`).

Layouts: jaxvssl runs NDHWC with conv kernels DHWIO ([kt, kh, kw, in, out]); torch runs NCDHW
with kernels OIDHW. BatchNorm: scale/bias <-> weight/bias, batch_stats mean/var <->
running_mean/running_var (plus torch's `num_batches_tracked`, written as 0 and ignored on
reading). torchvision's classifier (`fc`; MViT `head`) has no jaxvssl counterpart (a jaxvssl backbone ends at the
pooled feature): `to_torchvision` writes no `fc.*`, so load it into a model whose `fc` is
`torch.nn.Identity()`; `from_torchvision` drops `fc.*`. The expected torchvision key names and
shapes of each backbone are committed in `torchvision_spec.json` (scripts/torchvision_spec.py),
so the conversion is checked without torch.

Values of a state dict may be torch tensors or NumPy arrays; `to_torchvision` returns NumPy
arrays unless `as_torch=True`. torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from jaxvssl.errors import PretrainedWeightsError

# jaxvssl backbone name -> torchvision constructor name.
TORCHVISION_NAMES = {'r3d18': 'r3d_18', 'r2plus1d18': 'r2plus1d_18', 'mvit_b': 'mvit_v1_b'}
# Convertible but for some tensors: jaxvssl backbone -> (its torchvision twin in TORCHVISION_NAMES,
# the twin's keys that are never converted, why).
PARTIAL = {
  'mvit_b_scvrl': (
    'mvit_b',
    ('conv_proj.weight',),
    "SCVRL's kt=2 cube embedding (kernel 2x7x7) has no counterpart in torchvision's mvit_v1_b "
    '(3x7x7)',
  ),
}
# torchvision's classifiers (R3D/R(2+1)D `fc`, MViT `head`): no jaxvssl counterpart.
CLASSIFIER_PREFIXES = ('fc.', 'head.')
SPEC_PATH = os.path.join(os.path.dirname(__file__), 'torchvision_spec.json')
_STAGE_SIZES = (2, 2, 2, 2)


def _check_backbone(backbone: str) -> None:
  if backbone not in TORCHVISION_NAMES and backbone not in PARTIAL:
    raise PretrainedWeightsError(
      f'{backbone!r} has no torchvision counterpart; convertible: {sorted(TORCHVISION_NAMES)}, '
      f'partially: {sorted(PARTIAL)}'
    )


def not_converted(backbone: str) -> tuple[str, ...]:
  """The torchvision keys of `backbone`'s twin that the conversion leaves out (usually none)."""
  return PARTIAL[backbone][1] if backbone in PARTIAL else ()


def _conv_bn_pairs(backbone: str) -> Iterator[tuple[tuple[str, ...], str, str]]:
  """(jaxvssl ConvBN path, torch conv prefix, torch BN prefix) of every conv of `backbone`."""
  if backbone == 'r3d18':
    yield ('stem_conv',), 'stem.0', 'stem.1'
  else:  # torchvision R2Plus1dStem: conv(1x7x7), BN, ReLU, conv(3x1x1), BN, ReLU
    yield ('stem_conv_s',), 'stem.0', 'stem.1'
    yield ('stem_conv_t',), 'stem.3', 'stem.4'
  for i, blocks in enumerate(_STAGE_SIZES):
    for j in range(blocks):
      block, layer = f'stage{i + 1}_block{j}', f'layer{i + 1}.{j}'
      for conv in ('conv1', 'conv2'):
        if backbone == 'r3d18':  # Sequential(Conv3DSimple, BN, ReLU)
          yield (block, conv), f'{layer}.{conv}.0', f'{layer}.{conv}.1'
        else:  # Sequential(Conv2Plus1D(conv 1x3x3, BN(mid), ReLU, conv 3x1x1), BN, ReLU)
          yield (block, f'{conv}_s'), f'{layer}.{conv}.0.0', f'{layer}.{conv}.0.1'
          yield (block, f'{conv}_t'), f'{layer}.{conv}.0.3', f'{layer}.{conv}.1'
      if i > 0 and j == 0:
        yield (block, 'downsample'), f'{layer}.downsample.0', f'{layer}.downsample.1'


@functools.lru_cache(None)
def torchvision_spec() -> dict[str, dict[str, list[int]]]:
  """{backbone: {torchvision key: shape}} of the committed spec (without `fc.*`)."""
  with open(SPEC_PATH) as f:
    return json.load(f)


def _numpy(value: Any) -> np.ndarray:
  """A torch tensor or array-like -> NumPy (float32 for floating values)."""
  if hasattr(value, 'detach'):  # a torch tensor; no torch import needed to read it
    value = value.detach().cpu().numpy()
  value = np.asarray(value)
  return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value


def _get(tree: Mapping[str, Any], path: tuple[str, ...], collection: str) -> Any:
  node: Any = tree
  for part in path:
    if not isinstance(node, Mapping) or part not in node:
      raise PretrainedWeightsError(f'missing jaxvssl variable {collection}/{"/".join(path)}')
    node = node[part]
  return node


def to_torchvision(
  variables: Mapping[str, Any], backbone: str, as_torch: bool = False
) -> dict[str, Any]:
  """jaxvssl backbone variables -> a torchvision state dict (without `fc.*`).

  Args:
    variables: {'params', 'batch_stats'} of `models.get_backbone(backbone)` (input mode 'rgb',
      width 1; the tree `module.apply` takes).
    backbone: 'r3d18', 'r2plus1d18', 'mvit_b' or 'mvit_b_scvrl' (partial: `not_converted`).
    as_torch: torch tensors instead of NumPy arrays (imports torch).
  Returns:
    {torchvision key: value}, conv weights [O, I, kT, kH, kW].
  Raises:
    PretrainedWeightsError naming the first variable that is missing, unexpected or of the wrong
    shape for `backbone`.
  """
  _check_backbone(backbone)
  if backbone in ('mvit_b', 'mvit_b_scvrl'):
    omit = not_converted(backbone)
    out = _mvit_to_torchvision(variables, omit)
    check_against_spec(out, 'mvit_b', omit)
    return _as_torch(out) if as_torch else out
  params, stats = variables.get('params', {}), variables.get('batch_stats', {})
  out: dict[str, Any] = {}
  used = set()
  for path, conv, bn in _conv_bn_pairs(backbone):
    kernel = _numpy(_get(params, path + ('conv', 'kernel'), 'params'))
    if kernel.ndim != 5:
      raise PretrainedWeightsError(
        f'params/{"/".join(path)}/conv/kernel: expected a 3D conv kernel, got shape {kernel.shape}'
      )
    out[f'{conv}.weight'] = kernel.transpose(4, 3, 0, 1, 2)  # DHWIO -> OIDHW
    out[f'{bn}.weight'] = _numpy(_get(params, path + ('bn', 'scale'), 'params'))
    out[f'{bn}.bias'] = _numpy(_get(params, path + ('bn', 'bias'), 'params'))
    out[f'{bn}.running_mean'] = _numpy(_get(stats, path + ('bn', 'mean'), 'batch_stats'))
    out[f'{bn}.running_var'] = _numpy(_get(stats, path + ('bn', 'var'), 'batch_stats'))
    out[f'{bn}.num_batches_tracked'] = np.zeros((), np.int64)
    used.add(path)
  unexpected = sorted(
    '/'.join((coll,) + p)
    for coll in ('params', 'batch_stats')
    for p in _conv_bn_paths(variables.get(coll, {}))
    if p not in used
  )
  if unexpected:
    raise PretrainedWeightsError(f'unexpected jaxvssl variable {unexpected[0]} for {backbone}')
  check_against_spec(out, backbone)
  return _as_torch(out) if as_torch else out


def _as_torch(state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
  import torch  # pylint: disable=g-import-not-at-top

  return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}


def _conv_bn_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
  """The paths of the ConvBN modules in a variables collection (the parents of 'conv'/'bn')."""
  paths = set()
  for key, value in tree.items():
    if key in ('conv', 'bn'):
      paths.add(prefix)
    elif isinstance(value, Mapping):
      paths |= _conv_bn_paths(value, prefix + (key,))
    else:
      paths.add(prefix + (key,))
  return paths


def check_against_spec(
  state_dict: Mapping[str, Any], backbone: str, omit: tuple[str, ...] = ()
) -> None:
  """Raises naming the first key (in torchvision's order) that is missing, unexpected or of
  another shape than torchvision's `backbone` has (`fc.*` is ignored; `omit`: keys that must be
  absent, those a partial conversion leaves out)."""
  spec = {k: v for k, v in torchvision_spec()[backbone].items() if k not in omit}
  for key, shape in spec.items():
    if key not in state_dict:
      raise PretrainedWeightsError(f'{backbone}: missing key {key!r} (torchvision shape {shape})')
    found = list(np.shape(state_dict[key]))
    if found != list(shape):
      raise PretrainedWeightsError(
        f'{backbone}: key {key!r} has shape {found}; torchvision {TORCHVISION_NAMES[backbone]} '
        f'has {list(shape)}'
      )
  extra = [k for k in state_dict if k not in spec and not k.startswith(CLASSIFIER_PREFIXES)]
  if extra:
    raise PretrainedWeightsError(f'{backbone}: unexpected key {extra[0]!r}')


def from_torchvision(state_dict: Mapping[str, Any], backbone: str) -> dict[str, Any]:
  """A torchvision state dict -> jaxvssl {'params', 'batch_stats'} (NumPy float32).

  Accepts the state dict of `torchvision.models.video.r3d_18()` / `r2plus1d_18()` (e.g. the
  Kinetics-400 weights), with or without `fc.*` (dropped) and with or without a 'module.' prefix
  (DataParallel). Values may be torch tensors or NumPy arrays.

  Raises:
    PretrainedWeightsError naming the first key that does not fit `backbone` (e.g. an R(2+1)D
    state dict read as R3D).
  """
  _check_backbone(backbone)
  sd = {k.removeprefix('module.'): v for k, v in state_dict.items()}
  if backbone in ('mvit_b', 'mvit_b_scvrl'):
    # A partial backbone takes a full torchvision state dict or one without the omitted keys.
    omit = not_converted(backbone)
    sd = {k: v for k, v in sd.items() if k not in omit}
    check_against_spec(sd, 'mvit_b', omit)
    return _mvit_from_torchvision(sd, omit)
  check_against_spec(sd, backbone)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}

  def put(tree: dict[str, Any], path: tuple[str, ...], leaf: dict[str, np.ndarray]) -> None:
    node = tree
    for part in path:
      node = node.setdefault(part, {})
    node.update(leaf)

  for path, conv, bn in _conv_bn_pairs(backbone):
    kernel = _numpy(sd[f'{conv}.weight']).transpose(2, 3, 4, 1, 0)  # OIDHW -> DHWIO
    put(params, path, {'conv': {'kernel': kernel}})
    put(
      params, path, {'bn': {'scale': _numpy(sd[f'{bn}.weight']), 'bias': _numpy(sd[f'{bn}.bias'])}}
    )
    put(
      stats,
      path,
      {'bn': {'mean': _numpy(sd[f'{bn}.running_mean']), 'var': _numpy(sd[f'{bn}.running_var'])}},
    )
  return {'params': params, 'batch_stats': stats}


# --- MViT-B (mvit_v1_b) -------------------------------------------------------------------
# The jaxvssl MViT has torchvision's layout block for block (`jaxvssl/models/mvit.py`); names
# differ, torchvision's fused qkv Linear is three Dense layers here ([q; k; v] rows, heads
# contiguous in each), Linear weights are [out, in] vs Dense kernels [in, out], and the spatial
# position embedding is [H*W, C] vs [H, W, C].


def _mvit_rules(key: str) -> tuple[tuple[str, ...], str] | None:
  """torchvision key -> (jaxvssl params path, kind) for the keys that map one to one."""
  parts = key.split('.')
  fixed = {
    'conv_proj.weight': (('patch_embed', 'kernel'), 'conv'),
    'conv_proj.bias': (('patch_embed', 'bias'), 'copy'),
    'pos_encoding.class_token': (('cls_token',), 'row'),
    'pos_encoding.class_pos': (('pos_embed_class',), 'row'),
    'pos_encoding.temporal_pos': (('pos_embed_temporal',), 'copy'),
    'pos_encoding.spatial_pos': (('pos_embed_spatial',), 'grid'),
    'norm.weight': (('norm', 'scale'), 'copy'),
    'norm.bias': (('norm', 'bias'), 'copy'),
  }
  if key in fixed:
    return fixed[key]
  if parts[0] != 'blocks':
    return None
  block, rest, leaf = f'block{parts[1]}', parts[2:-1], parts[-1]
  linear = {'weight': ('kernel', 'linear'), 'bias': ('bias', 'copy')}
  norm = {'weight': ('scale', 'copy'), 'bias': ('bias', 'copy')}
  name = '.'.join(rest)
  table = {
    'norm1': (('norm1',), norm),
    'norm2': (('norm2',), norm),
    'mlp.0': (('mlp_fc1',), linear),
    'mlp.3': (('mlp_fc2',), linear),
    'project': (('proj',), linear),
    'attn.project.0': (('attn', 'proj'), linear),
  }
  for pool in ('q', 'k', 'v'):
    table[f'attn.pool_{pool}.pool'] = (
      ('attn', f'pool_{pool}', 'conv'),
      {'weight': ('kernel', 'conv')},
    )
    table[f'attn.pool_{pool}.norm_act.0'] = (('attn', f'pool_{pool}', 'norm'), norm)
  if name not in table or leaf not in table[name][1]:
    return None
  path, leaves = table[name]
  jax_leaf, kind = leaves[leaf]
  return (block,) + path + (jax_leaf,), kind


def _mvit_to_torchvision(
  variables: Mapping[str, Any], omit: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
  params = variables.get('params', {})
  out: dict[str, np.ndarray] = {}
  used: set[tuple[str, ...]] = set()
  for key in torchvision_spec()['mvit_b']:
    if key in omit:  # its jaxvssl variable exists but has no torchvision shape
      used.add(_mvit_rules(key)[0])
      continue
    if key.endswith(('attn.qkv.weight', 'attn.qkv.bias')):
      block, leaf = f'block{key.split(".")[1]}', key.rsplit('.', 1)[1]
      jax_leaf = 'kernel' if leaf == 'weight' else 'bias'
      paths = [(block, 'attn', n, jax_leaf) for n in ('q', 'k', 'v')]
      parts = [_numpy(_get(params, p, 'params')) for p in paths]
      out[key] = np.concatenate([x.T if leaf == 'weight' else x for x in parts], axis=0)
      used.update(paths)
      continue
    rule = _mvit_rules(key)
    if rule is None:
      raise PretrainedWeightsError(f'mvit_b: torchvision key {key!r} has no jaxvssl mapping')
    path, kind = rule
    x = _numpy(_get(params, path, 'params'))
    used.add(path)
    if kind == 'conv':
      x = x.transpose(4, 3, 0, 1, 2)  # DHWIO -> OIDHW
    elif kind == 'linear':
      x = x.T
    elif kind == 'row':
      x = x.reshape(-1)
    elif kind == 'grid':
      x = x.reshape(-1, x.shape[-1])
    out[key] = x
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  for path, _ in flat:
    names = tuple(str(getattr(p, 'key', p)) for p in path)
    if names not in used:
      raise PretrainedWeightsError(
        f'unexpected jaxvssl variable params/{"/".join(names)} for mvit_b'
      )
  return out


def _mvit_from_torchvision(sd: Mapping[str, Any], omit: tuple[str, ...] = ()) -> dict[str, Any]:
  params: dict[str, Any] = {}

  def put(path: tuple[str, ...], value: np.ndarray) -> None:
    node = params
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = value

  spec = torchvision_spec()['mvit_b']
  for key in spec:
    if key in omit:
      continue
    x = _numpy(sd[key])
    if key.endswith(('attn.qkv.weight', 'attn.qkv.bias')):
      block, leaf = f'block{key.split(".")[1]}', key.rsplit('.', 1)[1]
      for name, part in zip(('q', 'k', 'v'), np.split(x, 3, axis=0)):
        put(
          (block, 'attn', name, 'kernel' if leaf == 'weight' else 'bias'),
          part.T if leaf == 'weight' else part,
        )
      continue
    rule = _mvit_rules(key)
    if rule is None:
      raise PretrainedWeightsError(f'mvit_b: torchvision key {key!r} has no jaxvssl mapping')
    path, kind = rule
    if kind == 'conv':
      x = x.transpose(2, 3, 4, 1, 0)  # OIDHW -> DHWIO
    elif kind == 'linear':
      x = x.T
    elif kind == 'row':
      x = x[None]
    elif kind == 'grid':  # [H*W, C] -> [H, W, C]; torchvision's grid is square
      side = int(round(np.sqrt(x.shape[0])))
      x = x.reshape(side, side, x.shape[-1])
    put(path, x)
  return {'params': params}


def load_state_dict(path: str) -> dict[str, Any]:
  """A torch state dict file (`torch.save(model.state_dict())`) as {key: NumPy array}.

  Reads with `weights_only=True` (no pickled code runs). A checkpoint dict holding the weights
  under 'state_dict' or 'model' is unwrapped.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise PretrainedWeightsError(
      f'{path}: reading a torch file needs PyTorch (pip install "jaxvssl[torch]")'
    ) from e
  try:
    sd = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pickle, zipfile and torch raise many types for one corrupt file
    raise PretrainedWeightsError(f'{path}: not a readable torch state dict ({e})') from e
  for key in ('state_dict', 'model'):
    if isinstance(sd, dict) and isinstance(sd.get(key), dict):
      sd = sd[key]
  if not isinstance(sd, dict):
    raise PretrainedWeightsError(f'{path}: not a torch state dict (a {type(sd).__name__})')
  return {k: _numpy(v) for k, v in sd.items()}


def save_state_dict(path: str, variables: Mapping[str, Any], backbone: str) -> None:
  """Writes `to_torchvision(variables, backbone)` with `torch.save` (needs torch)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise PretrainedWeightsError(
      f'{path}: writing a torch file needs PyTorch (pip install "jaxvssl[torch]")'
    ) from e
  sd = to_torchvision(variables, backbone, as_torch=True)
  tmp = path + '.tmp'
  torch.save(sd, tmp)
  os.replace(tmp, path)

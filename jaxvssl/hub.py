"""Export a trained backbone from a run directory, and load an exported one anywhere.

  jaxvssl export --workdir RUN [--step N] --out FILE [--format npz|msgpack|torch]
  module, variables = jaxvssl.hub.load('r3d18.npz')
  features = module.apply(variables, clips, train=False)   # clips [B, T, H, W, 3] -> [B, D]

An exported file holds the downstream backbone's variables (params and BatchNorm statistics:
exactly what `jaxvssl evaluate` embeds with) and `FILE.json`, a sidecar with what rebuilds and
feeds the module: backbone name, width multiplier, input mode, model kwargs, crop size, frames,
the normalisation mean/std of [0, 1] pixels, the run's method, step and config hash (sha256 of
its config.json). Formats (`jaxvssl.interop.files`): '.npz' (NumPy alone reads it), '.msgpack'
(flax), or '.pt' (a torchvision state dict, `jaxvssl.interop.torch`; needs torch).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jaxvssl import models, runs
from jaxvssl.errors import PretrainedWeightsError
from jaxvssl.interop import files as weight_files
from jaxvssl.methods import base

EXTENSIONS = {'npz': '.npz', 'msgpack': '.msgpack', 'torch': '.pt'}


def config_hash(workdir: str) -> str:
  """sha256 of the run's config.json (which run, with which settings, the weights came from)."""
  with open(os.path.join(workdir, 'config.json'), 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def export_run(
  workdir: str, out: str, step: int | None = None, fmt: str | None = None
) -> tuple[str, str]:
  """Writes the backbone of run `workdir` (checkpoint `step`, default latest) to `out`.

  Args:
    fmt: 'npz', 'msgpack' or 'torch'; default from `out`'s extension. A torch export needs a
      backbone that torchvision has (r3d18, r2plus1d18, mvit_b; `jaxvssl.interop.torch`).
  Returns:
    (path of the weights, path of the sidecar).
  Raises:
    DataNotFoundError: no run / checkpoint there. PretrainedWeightsError: an extension that does
    not match `fmt`, or a backbone torch cannot take.
  """
  fmt = fmt or weight_files.format_of(out)
  if weight_files.format_of(out) != fmt:
    raise PretrainedWeightsError(
      f'{out}: extension does not match --format {fmt}; use {EXTENSIONS[fmt]}'
    )
  run = runs.load_run(workdir, step)
  variables = jax.tree_util.tree_map(
    np.asarray, run.method.backbone_variables(run.params, run.state)
  )
  meta = dict(
    base.backbone_meta(run.config),
    method=run.config.method,
    step=int(run.step),
    config_hash=config_hash(workdir),
    workdir=os.path.abspath(workdir),
  )
  if fmt != 'torch':
    return out, weight_files.save_variables(out, variables, meta)
  from jaxvssl.interop import torch as torch_lib  # pylint: disable=g-import-not-at-top

  bare = weight_files.bare(variables, meta['input_mode'])
  torch_lib.save_state_dict(out, bare, meta['backbone'])
  # A partial conversion (mvit_b_scvrl) names the torchvision keys the file lacks.
  missing = list(torch_lib.not_converted(meta['backbone']))
  if missing:
    print(f'[jaxvssl] {out} lacks {missing}: {torch_lib.PARTIAL[meta["backbone"]][2]}', flush=True)
  return out, weight_files.write_sidecar(out, dict(meta, format='torch', not_converted=missing))


def build_module(meta: dict[str, Any]) -> nn.Module:
  """The backbone a sidecar describes, for inference (one BatchNorm group)."""
  try:
    return models.get_backbone(
      meta['backbone'],
      input_mode=meta.get('input_mode', 'rgb'),
      input_group_size=meta.get('input_group_size', 2),
      width_multiplier=meta.get('width_multiplier', 1.0),
      # JSON turned tuple kwargs (e.g. stem_temporal) into lists; the modules compare tuples.
      **{
        k: tuple(v) if isinstance(v, list) else v for k, v in meta.get('model_kwargs', {}).items()
      },
    )
  except ValueError as e:
    raise PretrainedWeightsError(f'sidecar: {e}') from e


def load(path: str, backbone: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
  """(module, variables) of an exported file or a torchvision state dict (`PATH`, `backbone`).

  `module.apply(variables, clips, train=False)` embeds clips `[B, T, H, W, 3]` normalised as
  the sidecar's crop / frames / mean / std say -> `[B, D]`. The variables are checked against
  the module's own names and shapes: a file of another backbone fails naming the first key.
  """
  variables, meta = weight_files.read_weights(path, backbone)
  module = build_module(meta)
  size = int(meta.get('crop_size') or 32)
  frames = int(meta.get('num_frames') or 8)
  expected = jax.eval_shape(
    lambda: module.init(jax.random.PRNGKey(0), np.zeros((1, frames, size, size, 3)), train=False)
  )
  mismatch = base.describe_mismatch(expected, variables)
  if mismatch:
    raise PretrainedWeightsError(
      f'{path}: variables do not match backbone {meta["backbone"]!r}: {mismatch}'
    )
  return module, variables

"""`frames`: image MoCo of a 2D frame encoder on single frames (CACL's frame-encoder stage).

CACL's video transformer T reads every frame through a FROZEN 2D ResNet-50 that was itself
pretrained with MoCo on frames sampled every 10th frame of the pretraining videos (CACL,
"Cross-Architecture Self-supervised Video Representation Learning", Guo et al., CVPR 2022,
Sec. 4.1: ~180k frames of UCF101 split 1). No weights can be downloaded, so this stage is an
ordinary jaxvssl run: `jaxvssl train --config=configs/frames.py:resnet50 --workdir=W` writes a run
directory whose checkpoint `cacl` loads (`config.cacl.frame_encoder_workdir = W`) through the
loop's pretrained-weights hook (`Method.load_pretrained`) with `load_frame_encoder`.

MoCo (He et al., CVPR 2020), on frames:
  q = head(f(frame_q)), k = head_m(f_m(frame_k)) (momentum copy), queue of past keys,
  loss_i = -log( exp(q_i.k_i / tau) / (exp(q_i.k_i / tau) + sum_j exp(q_i.n_j / tau)) ).

Batches come from `jaxvssl.inputs.pipeline.make_frame_dataset` ('query', 'key': [B, S, S, 3], two
independent augmentations of one frame), not from video views. With `frames.input='difference'`
each image is instead frame t + `data.stride` minus frame t (one augmentation for both): a frame
encoder for the residual clips the tiny G reads, so that CACL's T can read the same input as G
(`cacl.frame_input='difference'`).

The run's `backbone()` is the 2D encoder applied to every frame of a clip and averaged over time
(`FramewiseEncoder`), so `jaxvssl evaluate` on a frames run gives the appearance-only baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvssl import models
from jaxvssl.errors import ConfigError, PretrainedWeightsError
from jaxvssl.inputs import pipeline
from jaxvssl.methods import base, registry
from jaxvssl.methods.moco import MoCo
from jaxvssl.models.residual import frame_differences

# What the 2D encoder reads: 'rgb' single frames, 'difference' frame t + data.stride minus frame t.
FRAME_INPUTS = ('rgb', 'difference')


class FramewiseEncoder(nn.Module):
  """A 2D encoder as a video backbone: `[B, T, H, W, C]` -> mean over T of `[B*T, D]` features.

  Images `[B, H, W, C]` pass straight through the encoder (the frames pretraining batches).
  """

  encoder: nn.Module
  difference: bool = False  # clips: encode the T - 1 frame differences (`frames.input`)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    if x.ndim == 5 and self.difference:
      x = frame_differences(x)
    if x.ndim == 5:
      b, t = x.shape[:2]
      feature = self.encoder(x.reshape((b * t,) + x.shape[2:]), train=train)
      feature = jnp.mean(feature.reshape(b, t, -1).astype(jnp.float32), axis=1)
    else:
      feature = self.encoder(x, train=train)
    # 'pool5' for retrieval's pool5 feature: the pooled frame feature is the last pooling layer.
    return (feature, {'pool5': feature}) if return_stages else feature


@registry.register
class Frames(MoCo):
  """Image MoCo (queue, momentum encoder, optional shuffle-BN) of a 2D frame encoder.

  The loss, queue, momentum update and shuffle-BN are MoCo's (`jaxvssl/methods/moco.py`); this
  class changes the inputs (single frames) and the network (a 2D encoder).
  """

  name = 'frames'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        encoder='resnet50',  # jaxvssl.models.available_frame_encoders()
        width_multiplier=1.0,  # < 1: the narrow CPU variants
        embed_dim=128,
        head_hidden_dim=0,  # 0: linear head (MoCo v1, "the same practice as in MoCo")
        queue_size=65536,  # a multiple of config.batch_size
        temperature=0.07,
        momentum=0.999,
        shuffle_bn=True,  # effective with model.bn_mode='per_device'
        input='rgb',  # FRAME_INPUTS: single frames, or frame t + data.stride minus frame t
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c = config.frames
    if c.encoder not in models.available_frame_encoders():
      raise ConfigError(
        f'config.frames.encoder={c.encoder!r} is unknown; known: '
        f'{models.available_frame_encoders()}'
      )
    if c.width_multiplier <= 0:
      raise ConfigError(f'config.frames.width_multiplier={c.width_multiplier} must be positive')
    if c.input not in FRAME_INPUTS:
      raise ConfigError(f'config.frames.input={c.input!r} is unknown; choose one of {FRAME_INPUTS}')
    # The 2D encoder sees single images: frame differences need a clip, so a residual input
    # would silently do nothing here (the encoder is chosen by config.frames, not config.model).
    if config.model.input_mode != 'rgb':
      raise ConfigError(
        f'config.model.input_mode={config.model.input_mode!r}: the frames method encodes single '
        "images; set it to 'rgb' (frame differences: config.frames.input='difference')"
      )
    super().validate_config(config)

  # --- data ----------------------------------------------------------------------------------
  def views(self) -> Sequence[Any]:
    return ()  # single frames, not video views: see train_dataset

  def train_dataset(
    self, *, global_batch_size, seed, process_index, process_count, start_step, source=None
  ):

    # Every data.frame_step-th frame of every training video (10 in the paper), two augmentations.
    return pipeline.make_frame_dataset(
      self.config.data,
      global_batch_size=global_batch_size,
      seed=seed,
      process_index=process_index,
      process_count=process_count,
      start_step=start_step,
      source=source,
      difference_stride=self.config.data.stride if self.config.frames.input == 'difference' else 0,
      device_transfer=True,  # the loop runs inputs/device.py's prepare_batch
    )

  def example_batch(self, batch_size: int) -> dict[str, jax.Array]:
    size = self.config.data.crop_size
    return {name: jnp.zeros((batch_size, size, size, 3), jnp.float32) for name in ('query', 'key')}

  # --- networks ------------------------------------------------------------------------------
  def frame_encoder(self) -> nn.Module:
    """The bare 2D encoder `[N, H, W, C]` -> `[N, D]` (what cacl freezes)."""
    c = self.config.frames
    bn_groups = self.num_devices if self.config.model.bn_mode == 'per_device' else 1
    return models.get_frame_encoder(
      c.encoder,
      width_multiplier=c.width_multiplier,
      bn_groups=bn_groups,
      dtype=jnp.dtype(self.config.model.dtype),
    )

  def backbone(self) -> nn.Module:
    return FramewiseEncoder(
      encoder=self.frame_encoder(), difference=self.config.frames.input == 'difference'
    )

  def frame_encoder_variables(self, params, state) -> dict[str, Any]:
    """{'params', 'batch_stats'} of the bare 2D encoder (`frame_encoder()`), query side."""
    variables = self.backbone_variables(params, state)
    return {collection: tree['encoder'] for collection, tree in variables.items()}


# ---------------------------------------------------------------------------------------------
# Loading the frozen encoder for cacl (called from `CACL.load_pretrained`).
# ---------------------------------------------------------------------------------------------


# One tree comparison for every pretrained-weights check (also `config.init_from`).
describe_mismatch = base.describe_mismatch


def load_frame_encoder(
  load_run: base.LoadRun,
  workdir: str,
  *,
  encoder: str,
  width_multiplier: float,
  expected: Any,
  step: int | None = None,
  frame_input: tuple[str, int] = ('rgb', 0),
) -> dict[str, Any]:
  """The 2D encoder variables {'params', 'batch_stats'} (NumPy) of a `frames` run.

  Args:
    load_run: the loop's run loader (`jaxvssl.runs.load_run`).
    workdir: the frames run directory (config.json + checkpoints/).
    encoder, width_multiplier: the architecture the caller builds; anything else is an error.
    expected: the caller's initialised encoder variables (arrays or ShapeDtypeStructs); the loaded
      tree must have exactly their names and shapes.
    step: a checkpoint step (None: the latest).
    frame_input: (`frames.input`, `data.stride`) the caller feeds the encoder; the stride is
      compared only for 'difference'.
  Raises:
    PretrainedWeightsError naming the path and the mismatch: no run / no checkpoint there, a run
    of another method, another architecture, or variables whose names or shapes differ. Never a
    silent partial load.
  """
  where = f'frame-encoder run {workdir!r} (config.cacl.frame_encoder_workdir)'
  run = base.load_stage_run(
    load_run, workdir, step, method='frames', config_file='configs/frames.py', where=where
  )
  found = (run.config.frames.encoder, float(run.config.frames.width_multiplier))
  wanted = (encoder, float(width_multiplier))
  if found != wanted:
    raise PretrainedWeightsError(
      f'{where}: architecture mismatch: the run trained frames.encoder={found[0]!r} with '
      f'width_multiplier={found[1]:g}, but config.cacl expects frame_encoder={wanted[0]!r} with '
      f'frame_encoder_width={wanted[1]:g}'
    )
  trained = (run.config.frames.input, int(run.config.data.stride))
  if trained[0] != frame_input[0] or (trained[0] == 'difference' and trained != frame_input):
    raise PretrainedWeightsError(
      f'{where}: input mismatch: the run trained on frames.input={trained[0]!r} '
      f'(data.stride={trained[1]}), but config.cacl.frame_input={frame_input[0]!r} with '
      f'data.stride={frame_input[1]}; train a frames stage with the same input'
    )
  variables = jax.tree_util.tree_map(
    np.asarray, run.method.frame_encoder_variables(run.params, run.state)
  )
  mismatch = describe_mismatch(expected, variables)
  if mismatch:
    raise PretrainedWeightsError(
      f'{where}, checkpoint step {run.step}: variables do not match '
      f'{encoder} (width {width_multiplier:g}): {mismatch}'
    )
  return variables

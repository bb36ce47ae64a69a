"""Temporal augmentations of FEATURE maps (MLFO's L_aug) and on-device group shuffles of clips
(SCVRL's temporal negatives).

Used by MLFO ("Enhancing Self-supervised Video Representation Learning via Multi-level Feature
Optimization", Qian et al., ICCV 2021, Sec. 3.3), method `mlfo`.

MLFO never shuffles the input video (that would force the backbone to adapt to unnatural
sequences); it shuffles / reverses an intermediate feature map [B, T, H, W, C] along T and
uses the result as negatives.

SCVRL ("SCVRL: Shuffled Contrastive Video Representation Learning", Dorkenwald et al., CVPRW
2022, Sec. 3.1) does shuffle the input: `group_shuffle_permutations` draws, per sample and under
jit, non-identity permutations of groups of consecutive frames, and `permute_frames` applies them
(the NumPy `jaxvssl.inputs.permutations.group_shuffle_negatives` is the input-pipeline analogue).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def temporal_reverse(features: jax.Array) -> jax.Array:
  """Reverses time. features: [B, T, H, W, C] -> [B, T, H, W, C]."""
  return jnp.flip(features, axis=1)


def random_temporal_permutations(rng: jax.Array, batch_size: int, num_steps: int) -> jax.Array:
  """One random NON-identity permutation of range(T) per sample.

  A uniform permutation is drawn (argsort of uniform noise); the rare identity draw is replaced by
  a cyclic shift by one, so the augmented map always differs in order from the original (an
  identity "negative" would be identical to the anchor's own features).

  Args:
    rng: PRNG key. batch_size: B. num_steps: T >= 2 (static).
  Returns:
    int32 [B, T].
  """
  if num_steps < 2:
    raise ValueError(f'random_temporal_permutations: need T >= 2 to shuffle, got T={num_steps}')
  noise = jax.random.uniform(rng, (batch_size, num_steps))
  perms = jnp.argsort(noise, axis=-1).astype(jnp.int32)
  identity = jnp.arange(num_steps, dtype=jnp.int32)
  is_identity = jnp.all(perms == identity, axis=-1, keepdims=True)
  return jnp.where(is_identity, jnp.roll(identity, -1)[None], perms)


def temporal_shuffle(features: jax.Array, rng: jax.Array) -> jax.Array:
  """Shuffles time with a per-sample random non-identity permutation.

  Args:
    features: [B, T, H, W, C]. rng: PRNG key.
  Returns:
    [B, T, H, W, C], same dtype.
  """
  b, t = features.shape[:2]
  perms = random_temporal_permutations(rng, b, t)
  idx = perms.reshape((b, t) + (1,) * (features.ndim - 2))
  return jnp.take_along_axis(features, idx, axis=1)


def temporal_augmentations(
  features: jax.Array, rng: jax.Array, ops: Sequence[str] = ('shuffle', 'reverse')
) -> jax.Array:
  """All configured temporal augmentations of a feature map, stacked on a new axis 1.

  Args:
    features: [B, T, H, W, C]. rng: PRNG key (used by 'shuffle').
    ops: names among 'shuffle', 'reverse' (static).
  Returns:
    [B, A, T, H, W, C] with A = len(ops), in the order of `ops`.
  """
  outs = []
  keys = jax.random.split(rng, max(len(ops), 1))
  for op, key in zip(ops, keys):
    if op == 'shuffle':
      outs.append(temporal_shuffle(features, key))
    elif op == 'reverse':
      outs.append(temporal_reverse(features))
    else:
      raise ValueError(
        f"temporal_augmentations: unknown op {op!r}, expected 'shuffle' or 'reverse'"
      )
  if not outs:
    raise ValueError('temporal_augmentations: ops is empty')
  return jnp.stack(outs, axis=1)


def group_shuffle_permutations(
  rng: jax.Array, batch_size: int, num_negatives: int, num_frames: int, group_size: int = 2
) -> jax.Array:
  """SCVRL's temporal negatives: per sample, `num_negatives` NON-identity permutations of the
  `num_frames / group_size` groups of `group_size` consecutive frames, as frame indices.

  Whole groups move (a patch embedding with temporal kernel = stride = group_size never sees a
  seam inside a token); each row is drawn independently (`random_temporal_permutations` over the
  groups), so samples, and negatives of one sample, differ; duplicates are possible.

  Args:
    rng: PRNG key. batch_size: B. num_negatives: M >= 1. num_frames: F, a multiple of
      group_size with F / group_size >= 2 groups (all static).
  Returns:
    int32 [B, M, F]: negative m of sample b is `clip_b[perms[b, m]]`.
  """
  if group_size < 1 or num_frames % group_size or num_frames // group_size < 2:
    raise ValueError(
      f'group_shuffle_permutations: num_frames={num_frames} must be a multiple of '
      f'group_size={group_size} with at least 2 groups'
    )
  if num_negatives < 1:
    raise ValueError(f'group_shuffle_permutations: num_negatives={num_negatives} must be >= 1')
  groups = random_temporal_permutations(
    rng, batch_size * num_negatives, num_frames // group_size
  ).reshape(batch_size, num_negatives, -1)
  frames = groups[..., :, None] * group_size + jnp.arange(group_size, dtype=jnp.int32)
  return frames.reshape(batch_size, num_negatives, num_frames)


def permute_frames(clips: jax.Array, perms: jax.Array) -> jax.Array:
  """Per-sample frame permutations of clips.

  Args:
    clips: [B, F, ...]. perms: int [B, M, F] frame indices (`group_shuffle_permutations`).
  Returns:
    [B, M, F, ...]: out[b, m] = clips[b, perms[b, m]].
  """
  return jax.vmap(lambda clip, p: clip[p])(clips, perms)

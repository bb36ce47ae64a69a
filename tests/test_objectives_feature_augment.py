"""MLFO's temporal augmentations of feature maps (jaxvssl.objectives.feature_augment)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import objectives


def test_feature_temporal_augmentations():
  b, t = 3, 4
  feats = np.broadcast_to(
    np.arange(t, dtype=np.float32)[None, :, None, None, None], (b, t, 2, 2, 3)
  )
  aug = jax.jit(objectives.temporal_augmentations)(jnp.asarray(feats), jax.random.key(0))
  assert aug.shape == (b, 2, t, 2, 2, 3)
  order = np.asarray(aug[:, 0, :, 0, 0, 0]).astype(int)  # shuffled time indices per sample
  for row in order:
    assert sorted(row) == list(range(t)) and list(row) != list(range(t))
  np.testing.assert_array_equal(aug[:, 1, :, 0, 0, 0], np.broadcast_to(np.arange(t)[::-1], (b, t)))
  # Non-identity even when every draw would be the identity: T = 2 shuffles always reverse.
  perms = objectives.random_temporal_permutations(jax.random.key(1), 64, 2)
  np.testing.assert_array_equal(perms, np.broadcast_to([1, 0], (64, 2)))

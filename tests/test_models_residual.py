"""Tests of jaxvssl.models.residual: residual-frame input."""

import jax
import numpy as np
import pytest

from jaxvssl.models import get_backbone
from jaxvssl.models.residual import (
  GroupResidualInput,
  ResidualInput,
  frame_differences,
  group_centered,
)
from tests.test_models import CLIP, KEY, TINY


def test_residual_input_feeds_frame_differences_to_the_backbone():
  x = jax.random.normal(KEY, CLIP)
  np.testing.assert_array_equal(frame_differences(x), np.asarray(x)[:, 1:] - np.asarray(x)[:, :-1])
  with pytest.raises(ValueError, match=r'T >= 2'):
    frame_differences(x[:, :1])
  with pytest.raises(ValueError, match=r"unknown input_mode 'flow'"):
    get_backbone('r3d10', input_mode='flow')
  plain = get_backbone('r3d10', width_multiplier=TINY)
  wrapped = get_backbone('r3d10', input_mode='residual', width_multiplier=TINY)
  assert isinstance(wrapped, ResidualInput) and wrapped.feature_dim == plain.feature_dim
  variables = jax.jit(lambda: wrapped.init(KEY, x, train=False))()
  inner = {k: v['backbone'] for k, v in variables.items()}
  np.testing.assert_allclose(
    wrapped.apply(variables, x, train=False),
    plain.apply(inner, frame_differences(x), train=False),
    rtol=1e-6,
  )
  # A constant offset (a static background) vanishes from the input.
  np.testing.assert_allclose(
    wrapped.apply(variables, x + 3.0, train=False),
    wrapped.apply(variables, x, train=False),
    rtol=1e-4,
    atol=1e-5,
  )
  _, stages = wrapped.apply(variables, x, train=False, return_stages=True)
  assert stages['stem'].shape[1] == CLIP[1] - 1


def test_group_centered_against_numpy_and_commutes_with_group_shuffles():
  x = np.asarray(jax.random.normal(KEY, (2, 8, 4, 4, 3)))
  out = np.asarray(group_centered(x, 2))
  a, b = x[:, 0::2], x[:, 1::2]
  np.testing.assert_allclose(out[:, 0::2], (a - b) / 2, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(out[:, 1::2], (b - a) / 2, rtol=1e-6, atol=1e-7)
  groups4 = x.reshape(2, 2, 4, 4, 4, 3)
  expected4 = (groups4 - groups4.mean(axis=2, keepdims=True)).reshape(x.shape)
  np.testing.assert_allclose(group_centered(x, 4), expected4, rtol=1e-6, atol=1e-6)
  # Moving whole groups before or after the transform is the same: no seam is ever crossed.
  order = np.array([2, 3, 6, 7, 0, 1, 4, 5])  # groups (1, 3, 0, 2)
  np.testing.assert_allclose(group_centered(x[:, order], 2), out[:, order], rtol=1e-6, atol=1e-7)
  # A frame moved across a seam changes its group, so the input changes (the test can fail).
  single = np.array([0, 2, 1, 3, 4, 5, 6, 7])
  assert not np.allclose(group_centered(x[:, single], 2), out[:, single])
  for bad_shape, size in (((2, 7, 4, 4, 3), 2), ((2, 8, 4, 4, 3), 1), ((8, 4, 4, 3), 2)):
    with pytest.raises(ValueError, match='group_centered'):
      group_centered(np.zeros(bad_shape), size)


def test_group_residual_input_wraps_the_backbone():
  x = jax.random.normal(KEY, CLIP)
  plain = get_backbone('r3d10', width_multiplier=TINY)
  wrapped = get_backbone('r3d10', input_mode='group_residual', width_multiplier=TINY)
  assert isinstance(wrapped, GroupResidualInput) and wrapped.group_size == 2
  variables = jax.jit(lambda: wrapped.init(KEY, x, train=False))()
  inner = {k: v['backbone'] for k, v in variables.items()}
  np.testing.assert_allclose(
    wrapped.apply(variables, x, train=False),
    plain.apply(inner, group_centered(x, 2), train=False),
    rtol=1e-6,
  )
  _, stages = wrapped.apply(variables, x, train=False, return_stages=True)
  assert stages['stem'].shape[1] == CLIP[1]  # same number of frames, unlike 'residual'

"""Tests of jaxvssl.models.residual: residual-frame input."""

import jax
import numpy as np
import pytest

from jaxvssl.models import get_backbone
from jaxvssl.models.residual import ResidualInput, frame_differences
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

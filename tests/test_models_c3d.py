"""Tests of jaxvssl.models.c3d."""

import jax.numpy as jnp

from jaxvssl.models import get_backbone
from tests.test_models import abstract_init, abstract_init_with_output, num_params


def test_c3d_feature_at_paper_resolution():
  x = jnp.zeros((2, 16, 112, 112, 3))
  c3d, _ = abstract_init_with_output(get_backbone('c3d'), x, train=False)
  assert c3d.shape == (2, 512)


def test_parameter_count():
  # 8 bias-free 3x3x3 convs + BN scale/bias, computed by hand.
  convs = 27 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 3 * 512 * 512)
  batch_norms = 2 * (64 + 128 + 2 * 256 + 4 * 512)
  x = jnp.zeros((1, 16, 112, 112, 3))
  assert num_params(abstract_init(get_backbone('c3d'), x, train=False)) == convs + batch_norms

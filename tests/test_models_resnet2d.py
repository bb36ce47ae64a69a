"""Tests of jaxvssl.models.resnet2d: the 2D frame encoders."""

import jax.numpy as jnp
import pytest

from jaxvssl.models import get_frame_encoder
from tests.test_models import abstract_init, num_params


# torchvision's published totals minus the ImageNet classifier (fc: 2048*1000+1000 = 2,049,000
# and 512*1000+1000 = 513,000).
@pytest.mark.parametrize(
  'name,expected',
  [
    ('resnet50', 25_557_032 - 2_049_000),  # 23,508,032
    ('resnet18', 11_689_512 - 513_000),  # 11,176,512
  ],
)
def test_parameter_counts(name, expected):
  x = jnp.zeros((1, 224, 224, 3))
  assert num_params(abstract_init(get_frame_encoder(name), x, train=False)) == expected

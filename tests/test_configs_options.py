"""The accelerator options of the config files (`+bf16`, `+remat`, `+device_input`, `+cudnn`)."""

import json

import pytest

from jaxvssl import config as config_lib
from jaxvssl.errors import ConfigError

PAPER = (
  'configs/moco.py:r3d18',
  'configs/frames.py:resnet50',
  'configs/cacl.py:sdp_vmoco_t.r3d18',
  'configs/scvrl.py:mvit_b',
  'configs/mlfo.py:r3d18',
)


def _diff(a, b):
  return config_lib.config_diff(
    json.loads(a.to_json_best_effort()), json.loads(b.to_json_best_effort())
  )


@pytest.mark.parametrize('spec', PAPER)
def test_bf16_option_changes_only_the_compute_dtype(spec):
  plain, bf16 = config_lib.load_config(spec), config_lib.load_config(spec + '+bf16')
  assert (plain.model.dtype, bf16.model.dtype) == ('float32', 'bfloat16')
  assert [d.split(':')[0] for d in _diff(plain, bf16)] == ['model.dtype']


def test_remat_device_input_and_cudnn_options():
  config = config_lib.load_config('configs/scvrl.py:mvit_b+bf16+remat+device_input+cudnn')
  assert config.model.kwargs.remat_stages == (1, 2, 3, 4)
  assert config.model.kwargs.attention_impl == 'cudnn'
  d = config.data
  assert (d.transfer_dtype, d.device_augment, d.device_prefetch) == ('uint8', True, 2)
  assert d.decode_crop == (d.resize_short_side is None)
  # CACL resizes its frames first: no decode_crop there.
  cacl = config_lib.load_config('configs/cacl.py:sdp_vmoco_t.r3d18+device_input')
  assert cacl.data.resize_short_side == 128 and not cacl.data.decode_crop


@pytest.mark.parametrize(
  'spec,match',
  [
    ('configs/moco.py:r3d18+fp8', 'fp8'),
    ('configs/moco.py:r3d18+cudnn', 'cudnn'),
    ('configs/frames.py:resnet50+remat', 'remat'),
  ],
)
def test_impossible_options_are_named(spec, match):
  with pytest.raises(ConfigError, match=match):
    config_lib.load_config(spec)

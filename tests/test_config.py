"""Config loading: unknown keys, wrong types and impossible values fail at load, naming the key."""

import textwrap

import pytest

from jaxvssl import config as config_lib


def _write(tmp_path, body):
  path = tmp_path / 'cfg.py'
  path.write_text(textwrap.dedent(body))
  return str(path)


def test_moco_configs_load():
  for variant in ('tiny', 'r3d18'):
    config = config_lib.load_config(f'configs/moco.py:{variant}')
    assert config.method == 'moco'


def test_tiny_variants_share_the_cpu_scale():
  # The README's timings and tables are for exactly this scale.
  for spec in ('configs/moco.py:tiny', 'configs/cacl.py:sdp_vmoco_t.tiny'):
    config = config_lib.load_config(spec)
    assert (config.model.backbone, config.model.width_multiplier) == ('r3d10', 0.125), spec
    assert (config.data.num_frames, config.data.stride, config.data.crop_size) == (8, 4, 32), spec
    assert config.data.eval_resize_short_side == 36 and config.batch_size == 32, spec
    assert config.model.input_mode == 'residual' and config.data.flip_prob == 0.0, spec


@pytest.mark.parametrize(
  'override, key',
  [
    ('model.input_mode="flow"', r'config\.model\.input_mode'),
    ('model.input_group_size=3', r'config\.model\.input_group_size'),  # 8 frames
    ('finetune.optimizer="adam"', r'config\.finetune\.optimizer'),
  ],
)
def test_impossible_model_and_finetune_values_are_named(override, key):
  overrides = [override]
  if 'input_group_size' in override:
    overrides.append('model.input_mode="group_residual"')
  with pytest.raises(config_lib.ConfigError, match=key):
    config_lib.load_config('configs/moco.py:tiny', overrides)


def test_unknown_key_in_file_names_the_key(tmp_path):
  path = _write(
    tmp_path,
    """
      from jaxvssl import config as config_lib
      def get_config(arg=None):
        c = config_lib.base_config('moco')
        c.optim.learning_rat = 0.1
        return c
      """,
  )
  with pytest.raises(
    config_lib.ConfigError, match=r'config\.optim\.learning_rat is not a known key'
  ):
    config_lib.load_config(path)


def test_unknown_override_names_the_key():
  with pytest.raises(config_lib.ConfigError, match=r'config\.moco\.temprature'):
    config_lib.load_config('configs/moco.py:tiny', ['moco.temprature=0.2'])


def test_override_applies_and_coerces_types():
  config = config_lib.load_config(
    'configs/moco.py:tiny', ['batch_size=16', 'optim.base_learning_rate=1', 'moco.queue_size=64']
  )
  assert config.batch_size == 16 and config.optim.base_learning_rate == 1.0


def test_wrong_type_names_the_key():
  with pytest.raises(config_lib.ConfigError, match=r'config\.batch_size'):
    config_lib.load_config('configs/moco.py:tiny', ['batch_size="large"'])


@pytest.mark.parametrize(
  'override, key',
  [
    ('optim.name=lamb', 'optim.name'),
    ('model.backbone=resnet9000', 'model.backbone'),
    ('batch_size=-4', 'batch_size'),
    ('moco.queue_size=1000', 'moco.queue_size'),  # not a multiple of the batch
    ('model.bn_mode=sometimes', 'model.bn_mode'),
    ('optim.warmup_steps=100000', 'optim.warmup_steps'),
    ('optim.lr_multipliers.backbone=-1', 'optim.lr_multipliers.backbone'),
    ('optim.lr_multipliers.backbone="fast"', 'optim.lr_multipliers.backbone'),
    ('evaluation.recompute_bn_batches=-2', 'evaluation.recompute_bn_batches'),
  ],
)
def test_impossible_values_name_the_key(override, key):
  with pytest.raises(config_lib.ConfigError, match=key.replace('.', r'\.')):
    config_lib.load_config('configs/moco.py:tiny', [override])


def test_missing_file_and_unknown_variant(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='does not exist'):
    config_lib.load_config(str(tmp_path / 'nope.py'))
  with pytest.raises(config_lib.ConfigError, match='unknown variant'):
    config_lib.load_config('configs/moco.py:huge')


def test_batch_must_divide_over_devices():
  config = config_lib.load_config('configs/moco.py:tiny')
  with pytest.raises(config_lib.ConfigError, match='divisible by the number of devices'):
    config_lib.require_divisible(config, 3)


def test_lr_multipliers_take_new_keys_from_the_command_line():
  config = config_lib.load_config(
    'configs/cacl.py:sdp_vmoco_t.tiny',
    ['optim.lr_multipliers.transformer=0.01', 'optim.lr_multipliers.transformer_head=1'],
  )
  assert dict(config.optim.lr_multipliers) == {'transformer': 0.01, 'transformer_head': 1}
  assert dict(config_lib.load_config('configs/cacl.py:sdp_vmoco_t.tiny').optim.lr_multipliers) == {}
  # Only free-form sections take new keys: elsewhere a new key is still a typo.
  with pytest.raises(config_lib.ConfigError, match=r'config\.optim\.lr_multiplier\b'):
    config_lib.load_config('configs/moco.py:tiny', ['optim.lr_multiplier=0.1'])
  with pytest.raises(
    config_lib.ConfigError, match=r'config\.optim\.lr_multipliers\.x is not a known section'
  ):
    config_lib.load_config('configs/moco.py:tiny', ['optim.lr_multipliers.x.y=0.1'])


def test_a_run_written_before_new_keys_loads_with_their_defaults(tmp_path):
  """config.json of an older run lacks keys added since: they get their defaults, and resuming
  with those defaults is no config change; unknown keys still fail."""
  import json  # pylint: disable=g-import-not-at-top

  config = config_lib.load_config('configs/cacl.py:sdp_vmoco_t.tiny')
  path = config_lib.save_config(config, str(tmp_path))
  with open(path) as f:
    raw = json.load(f)
  for section, key in (
    ('data', 'crop'),
    ('optim', 'lr_multipliers'),
    ('evaluation', 'recompute_bn_batches'),
    ('cacl', 'key_order'),
    ('cacl', 'transformer_negatives'),
  ):
    del raw[section][key]
  with open(path, 'w') as f:
    json.dump(raw, f)
  loaded = config_lib.config_from_json(path)
  assert loaded.data.crop == 'random_resized' and loaded.cacl.key_order == 'paper'
  assert loaded.evaluation.recompute_bn_batches == 0 and dict(loaded.optim.lr_multipliers) == {}
  new = json.loads(config.to_json_best_effort())
  assert config_lib.config_diff(raw, new) == []
  new['cacl']['key_order'] = 'released'
  assert config_lib.config_diff(raw, new) == ["cacl.key_order: '<absent>' -> 'released'"]
  raw['cacl']['not_a_key'] = 1
  with open(path, 'w') as f:
    json.dump(raw, f)
  with pytest.raises(config_lib.ConfigError, match=r'config\.cacl\.not_a_key'):
    config_lib.config_from_json(path)

"""SCVRL: the group-shuffle sampler, L_T / L_V / binary against NumPy, options, configs, training
(1 vs 8 devices, resume) and the paper-size smoke test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import config as config_lib, methods, models, objectives
from jaxvssl.errors import ConfigError
from tests import helpers

# The unit tests run on the MViT variant (the paper's backbone family, and the one the pooling
# and patch-kernel options apply to); `test_tiny_default_trains` runs the R3D default.
TINY = 'configs/scvrl.py:tiny_mvit'
# configs/scvrl.py:tiny_mvit shrunk to seconds per step: 4 frames (2 groups), 16 px, batch 8.
SHRINK = (
  'data.num_frames=4',
  'data.stride=1',
  'data.crop_size=16',
  'batch_size=8',
  'num_steps=3',
  'log_every_steps=1',
  'checkpoint_every_steps=1',
  'async_checkpointing=false',
  'progress_bar=false',
  'optim.warmup_steps=1',
  'scvrl.queue_size=16',
  'scvrl.num_negatives=3',
  'scvrl.head_hidden_dim=16',
  'scvrl.embed_dim=8',
  'scvrl.momentum=0.9',
)


def tiny_config(*overrides):
  return config_lib.load_config(TINY, SHRINK + tuple(overrides))


# --- the on-device group shuffle -------------------------------------------------------------


def test_group_shuffles_move_whole_groups_never_identity_and_differ_across_samples():
  perms = jax.jit(objectives.group_shuffle_permutations, static_argnums=(1, 2, 3, 4))(
    jax.random.PRNGKey(0), 64, 12, 16, 2
  )
  perms = np.asarray(perms)
  assert perms.shape == (64, 12, 16) and perms.dtype == np.int32
  flat = perms.reshape(-1, 16)
  # A permutation of the frames ...
  np.testing.assert_array_equal(np.sort(flat, axis=-1), np.broadcast_to(np.arange(16), flat.shape))
  # ... that moves groups of 2: every pair starts at an even frame and keeps its order.
  assert np.all(flat[:, 0::2] % 2 == 0)
  np.testing.assert_array_equal(flat[:, 1::2], flat[:, 0::2] + 1)
  assert not np.any(np.all(flat == np.arange(16), axis=-1))
  # Samples (and the negatives of one sample) differ.
  assert len({p.tobytes() for p in perms[:, 0]}) > 60
  assert len({p.tobytes() for p in perms[0]}) > 10
  # Two groups: the only non-identity permutation is the swap, whatever the draw.
  two = np.asarray(objectives.group_shuffle_permutations(jax.random.PRNGKey(1), 32, 4, 4, 2))
  np.testing.assert_array_equal(two, np.broadcast_to([2, 3, 0, 1], two.shape))
  with pytest.raises(ValueError, match='num_frames=5'):
    objectives.group_shuffle_permutations(jax.random.PRNGKey(0), 2, 2, 5, 2)


def test_permute_frames_gathers_per_sample():
  clips = np.random.default_rng(0).normal(size=(3, 6, 2, 2, 1)).astype(np.float32)
  perms = np.asarray(objectives.group_shuffle_permutations(jax.random.PRNGKey(3), 3, 4, 6, 2))
  out = np.asarray(objectives.permute_frames(jnp.asarray(clips), jnp.asarray(perms)))
  assert out.shape == (3, 4, 6, 2, 2, 1)
  for b in range(3):
    for m in range(4):
      np.testing.assert_array_equal(out[b, m], clips[b, perms[b, m]])


# --- losses against NumPy --------------------------------------------------------------------


def _np_info_nce(q, k, negs, tau):
  """-log softmax of [q.k, q.n_j] / tau (cosines); negs [N, D] shared or [B, N, D]."""

  def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)

  q, k, negs = unit(q), unit(k), unit(negs)
  pos = np.sum(q * k, -1, keepdims=True)
  neg = q @ negs.T if negs.ndim == 2 else np.einsum('bd,bnd->bn', q, negs)
  logits = np.concatenate([pos, neg], -1).astype(np.float64) / tau
  logits -= logits.max(-1, keepdims=True)
  return -(logits[:, 0] - np.log(np.exp(logits).sum(-1)))


def _setup(*overrides, batch_size=4):
  # No stochastic depth, so that the encoders can be re-applied by hand.
  config = tiny_config('model.kwargs.drop_path_rate=0.0', f'batch_size={batch_size}', *overrides)
  method = methods.build(config, 1)
  batch = {k: jnp.asarray(v) for k, v in next(helpers.fake_batches(config, method, seed=5)).items()}
  params, state = method.init(jax.random.PRNGKey(0), batch)
  # Queue keys and momentum weights unlike the query's, so mix-ups show.
  state['key_params'] = jax.tree_util.tree_map(lambda p: p * 1.1 + 0.01, params)
  return config, method, params, state, batch


def _apply(method, params, x):
  z_t, z_v, _ = method.encoder().apply(
    {'params': params}, x, train=True, rngs={'dropout': jax.random.PRNGKey(0)}
  )
  return np.asarray(z_t), np.asarray(z_v)


def _perms(method, rng, batch, num):
  _, _, perm_rng = jax.random.split(rng, 3)
  b, f = batch['anchor'].shape[:2]
  return np.asarray(
    objectives.group_shuffle_permutations(perm_rng, b, num, f, method.settings.group_size)
  )


def test_shuffle_loss_matches_numpy_with_negatives_of_the_positive():
  config, method, params, state, batch = _setup('scvrl.loss_weights=(1.0,0.0)')
  assert [v.name for v in method.views()] == ['anchor', 'positive']
  rng = jax.random.PRNGKey(7)
  loss, (metrics, new_state) = method.loss_fn(params, state, batch, rng, 0)
  c = config.scvrl
  q_t, _ = _apply(method, params, batch['anchor'])
  perms = _perms(method, rng, batch, c.num_negatives)
  positive = np.asarray(batch['positive'])
  # Each sample's shuffled positives, gathered in NumPy (MViT encodes every clip on its own; one
  # call of the batch size the method uses, as eager shapes compile slowly): [B, N_T, D].
  shuffled = np.stack([positive[b][perms[b]] for b in range(len(perms))])
  keys, _ = _apply(
    method,
    state['key_params'],
    np.concatenate([positive, shuffled.reshape((-1,) + positive.shape[1:])]),
  )
  k_pos, negs = keys[:4], keys[4:].reshape(4, c.num_negatives, -1)
  expected = _np_info_nce(q_t, k_pos, negs, c.temperature).mean()
  np.testing.assert_allclose(float(loss), expected, rtol=2e-5)
  np.testing.assert_allclose(float(metrics['shuffle_loss']), expected, rtol=2e-5)
  assert 'visual_loss' not in metrics
  # No L_V: the memory bank is untouched.
  np.testing.assert_array_equal(new_state['queue'].keys, state['queue'].keys)


def test_visual_loss_matches_numpy_with_the_memory_bank_and_pushes_keys():
  config, method, params, state, batch = _setup('scvrl.loss_weights=(0.0,1.0)')
  assert [v.name for v in method.views()] == ['anchor', 'visual']
  loss, (metrics, new_state) = method.loss_fn(params, state, batch, jax.random.PRNGKey(1), 0)
  _, q_v = _apply(method, params, batch['anchor'])
  _, k_v = _apply(method, state['key_params'], batch['visual'])
  bank = np.asarray(state['queue'].keys)
  expected = _np_info_nce(q_v, k_v, bank, config.scvrl.temperature).mean()
  np.testing.assert_allclose(float(loss), expected, rtol=2e-5)
  np.testing.assert_allclose(float(metrics['visual_loss']), expected, rtol=2e-5)
  unit = k_v / np.linalg.norm(k_v, axis=-1, keepdims=True)
  np.testing.assert_allclose(np.asarray(new_state['queue'].keys[:4]), unit, atol=1e-5)
  np.testing.assert_array_equal(new_state['queue'].keys[4:], bank[4:])
  assert int(new_state['queue'].pointer) == 4


def test_total_loss_is_the_weighted_sum_and_the_heads_are_separate():
  _, method, params, state, batch = _setup('scvrl.loss_weights=(0.5,2.0)')
  assert [v.name for v in method.views()] == ['anchor', 'positive', 'visual']
  assert {'shuffle_head', 'visual_head', 'backbone'} == set(params)
  loss, (metrics, _) = method.loss_fn(params, state, batch, jax.random.PRNGKey(2), 0)
  np.testing.assert_allclose(
    float(loss), 0.5 * metrics['shuffle_loss'] + 2.0 * metrics['visual_loss'], rtol=1e-6
  )
  q_t, q_v = _apply(method, params, batch['anchor'])
  assert not np.allclose(q_t, q_v)


def test_shared_head_uses_one_head_for_both_losses():
  _, method, params, state, batch = _setup('scvrl.shared_head=true')
  assert {'shuffle_head', 'backbone'} == set(params)
  q_t, q_v = _apply(method, params, batch['anchor'])
  np.testing.assert_array_equal(q_t, q_v)
  loss, (metrics, _) = method.loss_fn(params, state, batch, jax.random.PRNGKey(2), 0)
  np.testing.assert_allclose(float(loss), metrics['shuffle_loss'] + metrics['visual_loss'])


def test_binary_objective_classifies_the_anchor_against_its_group_shuffle():
  _, method, params, state, batch = _setup(
    'scvrl.shuffle_objective=binary', 'scvrl.loss_weights=(1.0,0.0)'
  )
  assert [v.name for v in method.views()] == ['anchor']
  rng = jax.random.PRNGKey(4)
  loss, (metrics, _) = method.loss_fn(params, state, batch, rng, 0)
  anchor = np.asarray(batch['anchor'])
  perms = _perms(method, rng, batch, 1)[:, 0]
  shuffled = np.stack([anchor[b][perms[b]] for b in range(len(anchor))])
  logits, _ = _apply(method, params, np.concatenate([anchor, shuffled]))
  assert logits.shape == (8, 2)
  labels = np.repeat([0, 1], 4)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = -log_p[np.arange(8), labels].mean()
  np.testing.assert_allclose(float(loss), expected, rtol=2e-5)
  np.testing.assert_allclose(
    float(metrics['shuffle_accuracy']), np.mean(logits.argmax(-1) == labels)
  )


def test_mean_pool_changes_the_feature_not_the_parameters():
  cls_method = methods.build(tiny_config(), 1)
  mean_method = methods.build(tiny_config('scvrl.pool=mean'), 1)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 16, 16, 3)), jnp.float32)
  variables = cls_method.backbone().init(jax.random.PRNGKey(0), x)
  mean_variables = mean_method.backbone().init(jax.random.PRNGKey(0), x)
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(mean_variables)
  feature, stages = cls_method.backbone().apply(variables, x, return_stages=True)
  mean_feature = mean_method.backbone().apply(variables, x)
  assert mean_feature.shape == feature.shape
  assert not np.allclose(feature, mean_feature)
  # The mean token = the mean of the final-LayerNorm patch tokens of the last stage.
  norm = variables['params']['backbone']['norm']  # (inside the group-centring input wrapper)
  tokens = stages['stage4'].reshape(2, -1, feature.shape[-1])
  mu, var = tokens.mean(-1, keepdims=True), tokens.var(-1, keepdims=True)
  normed = (tokens - mu) / np.sqrt(var + 1e-6) * norm['scale'] + norm['bias']
  np.testing.assert_allclose(mean_feature, normed.mean(1), rtol=1e-4, atol=1e-5)


def test_patch_temporal_kernel_3_is_a_model_kwarg():
  config = tiny_config('model.kwargs.patch_kernel=(3,7,7)')
  method = methods.build(config, 1)
  x = jnp.zeros((1, 4, 16, 16, 3))
  params = method.backbone().init(jax.random.PRNGKey(0), x)['params']
  assert params['backbone']['patch_embed']['kernel'].shape[:3] == (3, 7, 7)
  default = models.get_backbone('mvit_tiny').init(jax.random.PRNGKey(0), x)['params']
  assert default['patch_embed']['kernel'].shape[:3] == (2, 7, 7)


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
  'override, key',
  [
    ('scvrl.loss_weights=(0.0,0.0)', r'scvrl\.loss_weights'),
    ('scvrl.loss_weights=(1.0,1.0,1.0)', r'scvrl\.loss_weights'),
    ('scvrl.queue_size=12', r'scvrl\.queue_size'),
    ('scvrl.temperature=0.0', r'scvrl\.temperature'),
    ('scvrl.momentum=1.0', r'scvrl\.momentum'),
    ('scvrl.num_negatives=0', r'scvrl\.num_negatives'),
    ('scvrl.group_size=3', r'scvrl\.group_size'),
    ('scvrl.group_size=4', r'scvrl\.group_size'),
    ('scvrl.shuffle_objective=order', r'scvrl\.shuffle_objective'),
    ('scvrl.pool=max', r'scvrl\.pool'),
    ('model.input_mode=residual', r'model\.input_mode'),
  ],
)
def test_config_validation_names_the_key(override, key):
  with pytest.raises(ConfigError, match=key):
    tiny_config(override)


def test_config_validation_of_combinations():
  with pytest.raises(ConfigError, match=r'scvrl\.shared_head'):
    tiny_config('scvrl.shared_head=true', 'scvrl.shuffle_objective=binary')
  with pytest.raises(ConfigError, match=r'scvrl\.pool'):
    tiny_config('scvrl.pool=mean', 'model.backbone=r3d10')
  # Input groups of 4 frames straddle the seams of shuffled 2-frame groups.
  with pytest.raises(ConfigError, match=r'model\.input_group_size=4'):
    tiny_config('model.input_mode=group_residual', 'model.input_group_size=4')
  tiny_config('model.input_mode=group_residual', 'model.input_group_size=2')  # accepted


def test_variants():
  tiny = config_lib.load_config('configs/scvrl.py:tiny')
  assert (tiny.model.backbone, tiny.model.width_multiplier) == ('r3d10', 0.125)
  assert (tiny.model.input_mode, tiny.model.input_group_size) == ('group_residual', 2)
  assert tiny.data.name == 'synthetic_motion/default' and tiny.optim.schedule == 'constant'
  tiny_mvit = config_lib.load_config(TINY)
  assert tiny_mvit.model.backbone == 'mvit_tiny' and tiny_mvit.model.input_mode == 'group_residual'
  assert tiny_mvit.optim.name == 'adamw' and tiny_mvit.finetune.optimizer == 'adamw'
  paper = config_lib.load_config('configs/scvrl.py:mvit_b')
  assert paper.model.backbone == 'mvit_b_scvrl' and paper.data.crop_size == 224
  assert (paper.data.num_frames, paper.data.stride) == (16, 4)
  assert paper.data.name == 'kinetics/k400'
  assert paper.optim.name == 'adamw' and paper.optim.weight_decay == 0.05
  assert paper.scvrl.queue_size == 65_536 and paper.scvrl.num_negatives == 12
  assert paper.scvrl.temperature == 0.1 and tuple(paper.scvrl.loss_weights) == (1.0, 1.0)
  from jaxvssl import optim  # pylint: disable=g-import-not-at-top

  schedule = optim.make_schedule(paper)
  np.testing.assert_allclose(float(schedule(0)), 1e-6, rtol=1e-4)
  np.testing.assert_allclose(float(schedule(paper.optim.warmup_steps)), 1e-4, rtol=1e-4)
  np.testing.assert_allclose(float(schedule(paper.num_steps)), 1e-6, rtol=1e-3)
  assert all(v.sampler == 'targeted' for v in methods.build(paper, 1).views())


# --- training --------------------------------------------------------------------------------


def assert_two_finite_steps(config, tmp_path):
  """Trains `config` (num_steps=2) on one device; both logged steps have finite losses."""
  helpers.run_training(config, tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in ('loss', 'shuffle_loss', 'visual_loss'):
      assert np.isfinite(record[key]), key


def test_tiny_default_trains(tmp_path):
  """2 steps of configs/scvrl.py:tiny (R3D-10, group-centred input) at 8 frames, 32 px."""
  config = config_lib.load_config(
    'configs/scvrl.py:tiny',
    SHRINK + ('data.num_frames=8', 'data.crop_size=32', 'num_steps=2'),
  )
  assert_two_finite_steps(config, tmp_path)


def test_tiny_trains_with_finite_losses(tmp_path):
  ts = helpers.run_training(tiny_config('num_steps=2'), tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in ('loss', 'shuffle_loss', 'visual_loss', 'shuffle_accuracy', 'visual_accuracy'):
      assert np.isfinite(record[key]), key
  # The bank holds the 2 batches of visual keys.
  assert int(ts.state['queue'].pointer) == 0
  assert not np.allclose(
    jax.tree_util.tree_leaves(ts.state['key_params'])[0], jax.tree_util.tree_leaves(ts.params)[0]
  )


@pytest.mark.slow
def test_tiny_8_devices_equal_1_device_and_resume_is_exact(tmp_path):
  """Slow: four train-loop runs (1 device, 8 devices, interrupted + resumed): 52 s with a warm
  compilation cache, about 2.5 min with a cold one, on a loaded 2-core CPU."""
  # SGD with momentum, not the variant's AdamW: Adam divides by sqrt(v), which turns the float32
  # reassociation noise of near-zero gradients (split over 8 shards) into lr-sized steps, so
  # parameters could not be compared tightly; the losses and gradients are what is tested here.
  # Resume restores the momentum encoder, the memory bank and its pointer, the rng and the step.
  config = tiny_config('optim.name=sgd', 'optim.base_learning_rate=0.1', 'optim.weight_decay=1e-4')
  keys = ('loss', 'shuffle_loss', 'visual_loss')
  one, _ = helpers.check_devices_and_resume(config, tmp_path, keys)
  assert int(one.state['queue'].pointer) == 8 * 3 % 16


@pytest.mark.slow
def test_paper_size_mvit_b_two_steps_on_cpu(tmp_path):
  """2 steps of configs/scvrl.py:mvit_b (MViT-B, 16x224x224, N_T = 12) at batch 2 on CPU."""
  config = config_lib.load_config(
    'configs/scvrl.py:mvit_b',
    (
      'batch_size=2',
      'num_steps=2',
      'optim.warmup_steps=1',
      'scvrl.queue_size=64',
      'log_every_steps=1',
      'checkpoint_every_steps=2',
      'async_checkpointing=false',
      'progress_bar=false',
    ),
  )
  assert_two_finite_steps(config, tmp_path)

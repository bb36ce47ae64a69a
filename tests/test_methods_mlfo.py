"""MLFO: the combined loss against NumPy, the network's levels and queue, views, options, configs,
training (1 vs 8 devices, resume) and the paper-size smoke test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import config as config_lib, methods, objectives, parallel
from jaxvssl.errors import ConfigError
from jaxvssl.methods import mlfo
from tests import helpers
from tests.test_objectives_contrastive import ref_info_nce, ref_mlfo_instance
from tests.test_objectives_graph import ref_graph_loss, ref_targets
from tests.test_objectives_prototypes import ref_log_softmax, ref_sinkhorn
from tests.test_objectives_temporal import ref_timestamp

TINY = 'configs/mlfo.py:tiny'
# configs/mlfo.py:tiny shrunk to well under a second per step: 16 frames (the fewest with >= 2
# timesteps at every level), 16 px, width 1/16, batch 8.
SHRINK = (
  'data.crop_size=16',
  'model.width_multiplier=0.0625',
  'batch_size=8',
  'num_steps=3',
  'log_every_steps=1',
  'checkpoint_every_steps=1',
  'async_checkpointing=false',
  'progress_bar=false',
  'optim.warmup_steps=1',
  'mlfo.num_prototypes=6',
  'mlfo.queue_size=16',
  'mlfo.queue_start_step=1',
  'mlfo.graph_start_fraction=0.34',  # graph losses from step 1 of 3
  'mlfo.embed_dim=8',
)


def tiny_config(*overrides):
  return config_lib.load_config(TINY, SHRINK + tuple(overrides))


# --- the combined loss against NumPy ---------------------------------------------------------


def _random_outputs(seed, b=5, d=6, k=4, num_aug=2):
  """`MLFONetwork` outputs of every level: T = 2 / 4 / 8 timesteps at high / mid / low."""
  rng = np.random.default_rng(seed)
  f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
  steps = {'high': 2, 'mid': 4, 'low': 8}
  z1 = f32(b, d)
  return {
    # View b close to view a at the high level, so the graph keeps some edges.
    'z': {
      level: (z1, z1 + 0.3 * f32(b, d)) if level == 'high' else (f32(b, d), f32(b, d))
      for level in steps
    },
    'scores': (f32(b, k), f32(b, k)),
    'retrieval': {level: (f32(b, t, d), f32(b, t, d)) for level, t in steps.items()},
    'aug': {
      level: (f32(b, d), f32(b, d), f32(b, num_aug, d), f32(b, num_aug, d)) for level in steps
    },
  }


def _ref_semantic(s1, s2, q1, q2, tau, eps, iters):
  t1 = ref_sinkhorn(np.concatenate([s1, q1]) if q1 is not None else s1, eps, iters)[: len(s1)]
  t2 = ref_sinkhorn(np.concatenate([s2, q2]) if q2 is not None else s2, eps, iters)[: len(s2)]
  lp1, lp2 = ref_log_softmax(s1 / tau), ref_log_softmax(s2 / tau)
  loss = np.mean([-0.5 * (t1[i] @ lp2[i] + t2[i] @ lp1[i]) for i in range(len(s1))])
  return loss, t1, t2


def ref_combined(out, queues, use_queue, graph_on, c):
  """The whole MLFO loss in NumPy loops (paper form of every term)."""
  w = dict(zip(mlfo.LEVELS, c.level_weights))
  z1, z2 = out['z']['high']
  s1, s2 = out['scores']
  q1, q2 = queues if use_queue else (None, None)
  loss_sem, t1, t2 = _ref_semantic(
    s1, s2, q1, q2, c.prototype_temperature, c.sinkhorn_epsilon, c.sinkhorn_iterations
  )
  total = ref_mlfo_instance(z1, z2, c.temperature) + loss_sem
  targets = ref_targets(z1, z2, t1, t2, c.temperature, c.eta)
  if graph_on:
    for level in c.graph_levels:
      total += w[level] * ref_graph_loss(targets, *out['z'][level], c.temperature)
  for level in c.retrieval_levels:
    short, long = out['retrieval'][level]
    positions = np.broadcast_to(np.arange(long.shape[1]), long.shape[:2])
    total += c.retrieval_weight * w[level] * ref_timestamp(short, long, positions, c.temperature)
  for level in c.aug_levels:
    e1, e2, a1, a2 = out['aug'][level]
    aug = 0.5 * (
      ref_info_nce(e1, e2, a1, c.temperature).mean()
      + ref_info_nce(e2, e1, a2, c.temperature).mean()
    )
    total += c.aug_weight * aug
  return total


def _settings(*overrides):
  # A temperature of 0.5 keeps the NumPy exps well inside float64; eta 0.15 cuts some edges; a
  # Sinkhorn epsilon of 0.5 keeps the targets soft enough that no argmax of s^1 + s^2 (the graph's
  # pseudo classes) is a near tie that float32 and float64 could break differently.
  return tiny_config(
    'mlfo.temperature=0.5',
    'mlfo.eta=0.15',
    'mlfo.num_prototypes=4',
    'mlfo.sinkhorn_epsilon=0.5',
    *overrides,
  )


@pytest.mark.parametrize('use_queue, graph_on', [(True, True), (False, False), (False, True)])
def test_combined_loss_matches_numpy(use_queue, graph_on):
  c = _settings('mlfo.level_weights=(1.0,0.7,0.2)', 'mlfo.aug_weight=0.6').mlfo
  out = _random_outputs(2)
  rng = np.random.default_rng(1)
  queues = tuple(rng.normal(size=(10, 4)).astype(np.float32) for _ in range(2))
  loss, metrics = mlfo.combine_losses(out, queues, use_queue, graph_on, c)
  want = ref_combined(out, queues, use_queue, graph_on, c)
  np.testing.assert_allclose(float(loss), want, rtol=2e-5)
  assert metrics['graph_on'] == float(graph_on)
  # The graph losses are logged in both stages (they only count in the second).
  assert {'graph_loss/mid', 'graph_loss/low'} <= set(metrics)
  assert not {'graph_loss/high'} & set(metrics)


def test_combined_loss_of_the_released_code_variant():
  """graph at every level in the code's form, reverse-only L_aug with batch negatives, x 0.5."""
  config = _settings()
  import configs.mlfo as mlfo_configs  # pylint: disable=g-import-not-at-top

  c = mlfo_configs.released_code(config).mlfo
  out = _random_outputs(2, num_aug=1)
  loss, metrics = mlfo.combine_losses(out, None, False, True, c)
  z1, z2 = out['z']['high']
  loss_sem, (t1, t2) = objectives.swapped_prediction_loss(*out['scores'], epsilon=0.5)
  targets = objectives.graph_targets(z1, z2, t1, t2, c.temperature, c.eta)
  want = objectives.mlfo_instance_loss(z1, z2, c.temperature) + loss_sem
  for level, w in zip(mlfo.LEVELS, c.level_weights):
    want += w * objectives.graph_loss(targets, *out['z'][level], c.temperature, form='code')
    short, long = out['retrieval'][level]
    positions = jnp.broadcast_to(jnp.arange(long.shape[1]), long.shape[:2])
    want += w * objectives.timestamp_retrieval_loss(short, long, positions, c.temperature)
  for level in ('mid', 'low'):
    want += 0.5 * objectives.temporal_augmentation_loss(
      *out['aug'][level], c.temperature, batch_negatives=True
    )
  np.testing.assert_allclose(float(loss), float(want), rtol=1e-5)
  assert set(k for k in metrics if k.startswith('aug_loss')) == {'aug_loss/mid', 'aug_loss/low'}


# --- the method ------------------------------------------------------------------------------


def test_views_are_one_window_first_half_second_half_and_subsampled_whole():
  method = methods.build(config_lib.load_config(TINY), 1)
  views = {v.name: v for v in method.views()}
  assert set(views) == {'a', 'b', 'long'}
  assert {v.temporal_group for v in views.values()} == {'window'}
  assert all(v.augment_group is None for v in views.values())  # independent augmentation
  a, b, long = views['a'], views['b'], views['long']
  assert (a.num_frames, a.stride, a.offset) == (16, 1, 0)
  assert (b.num_frames, b.stride, b.offset) == (16, 1, 16)
  assert (long.num_frames, long.stride, long.offset) == (16, 2, 0)
  # The long sequence spans the window of a and b (32 frames), within the 48-frame videos.
  assert long.span <= b.span == 32
  no_retrieval = methods.build(config_lib.load_config(TINY, ('mlfo.retrieval_levels=()',)), 1)
  assert [v.name for v in no_retrieval.views()] == ['a', 'b']


def _setup(*overrides):
  config = tiny_config(*overrides)
  method = methods.build(config, 1)
  batch = {k: jnp.asarray(v) for k, v in next(helpers.fake_batches(config, method, seed=3)).items()}
  return config, method, batch


def test_loss_fn_combines_the_network_outputs_and_queues_raw_scores():
  config, method, batch = _setup()
  params, state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  assert set(params) == {
    'backbone',
    'high_head',
    'mid_head',
    'low_head',
    'prototypes',
    *(f'{level}_{part}' for level in mlfo.LEVELS for part in ('me', 'me_mlp')),
  }
  rng = jax.random.PRNGKey(5)

  @jax.jit
  def loss_and_outputs(state, step):
    # One compilation for the method's loss and the network applied by hand.
    variables = {'params': params, 'batch_stats': state['batch_stats']}
    out, _ = method._apply(variables, batch, rng, True, mutable=['batch_stats'])
    return method.loss_fn(params, state, batch, rng, step), out

  # Step 1: the queue (2 batches after the first push) is not full yet -> not used.
  state['queues']['a'] = state['queues']['a'].push(jnp.ones((8, 6)))
  (loss, (metrics, new_state)), out = loss_and_outputs(state, 1)
  queues = (state['queues']['a'].keys, state['queues']['b'].keys)
  want, want_metrics = mlfo.combine_losses(out, queues, False, True, config.mlfo)
  np.testing.assert_allclose(float(loss), float(want), rtol=1e-5)
  assert float(metrics['queue_in_use']) == 0.0 and float(metrics['graph_on']) == 1.0
  for key in want_metrics:
    np.testing.assert_allclose(
      float(metrics[key]), float(want_metrics[key]), rtol=1e-4, err_msg=key
    )
  # The raw prototype scores of this batch are stored after the first batch's rows.
  np.testing.assert_allclose(new_state['queues']['a'].keys[8:], out['scores'][0], atol=1e-6)
  np.testing.assert_allclose(new_state['queues']['b'].keys[:8], out['scores'][1], atol=1e-6)
  assert int(new_state['queues']['a'].pointer) == 0
  # Shapes: per-timestep retrieval features of every level, scores against K = 6 prototypes.
  assert [out['retrieval'][lv][0].shape for lv in mlfo.LEVELS] == [(8, t, 8) for t in (2, 4, 8)]
  assert out['scores'][0].shape == (8, 6)
  # From step 2 (queue full and queue_start_step=1 passed) the queue enters the Sinkhorn.
  (_, (metrics2, _)), _ = loss_and_outputs(new_state, 2)
  assert float(metrics2['queue_in_use']) == 1.0


def _apply_shapes(method, params, state, batch):
  """Shapes of the network outputs of one training-mode forward pass (no compute)."""
  out, _ = jax.eval_shape(
    lambda p, s: method._apply(
      {'params': p, 'batch_stats': s['batch_stats']},
      batch,
      jax.random.PRNGKey(1),
      True,
      mutable=['batch_stats'],
    ),
    params,
    state,
  )
  return out


def test_options_build_only_what_they_use():
  _, method, batch = _setup(
    'mlfo.graph_levels=()',
    'mlfo.retrieval_levels=()',
    'mlfo.aug_levels=("mid",)',
    'mlfo.semantic_head=true',
    'mlfo.queue_size=0',
  )
  assert 'long' not in batch
  params, state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  assert set(params) == {
    'backbone',
    'high_head',
    'semantic_head',
    'mid_me',
    'mid_me_mlp',
    'prototypes',
  }
  assert 'queues' not in state


def test_input_level_temporal_modelling_contrasts_the_high_level_of_augmented_clips():
  """Table 3's conventional temporal modelling: shuffled and reversed input clips through the
  backbone; their high-level embeddings are the negatives (no motion excitation)."""
  _, method, batch = _setup('mlfo.aug_levels=()', 'mlfo.input_aug=true')
  params, state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  assert not any(name.endswith('_me') for name in params)
  out = _apply_shapes(method, params, state, batch)
  assert set(out['aug']) == {'input'}
  assert [x.shape for x in out['aug']['input']] == [(8, 8), (8, 8), (8, 2, 8), (8, 2, 8)]
  _, (metrics, _) = jax.eval_shape(
    method.loss_fn, params, state, batch, jax.random.PRNGKey(1), jnp.zeros((), jnp.int32)
  )
  assert 'aug_loss/input' in metrics and not any(k.startswith('aug_loss/h') for k in metrics)


def test_bfloat16_model_keeps_the_losses_and_sinkhorn_in_float32():
  _, method, batch = _setup('model.dtype=bfloat16')
  params, state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  out = _apply_shapes(method, params, state, batch)
  assert {x.dtype for x in jax.tree_util.tree_leaves(out)} == {jnp.dtype(jnp.float32)}
  loss, (metrics, new_state) = jax.eval_shape(
    method.loss_fn, params, state, batch, jax.random.PRNGKey(1), jnp.zeros((), jnp.int32)
  )
  assert loss.dtype == jnp.float32 and new_state['queues']['a'].keys.dtype == jnp.float32


def test_backbone_variables_are_the_evaluated_backbone():
  """What `jaxvssl evaluate` reads: the backbone's variables fit `method.backbone()` (R3D-10 with
  the authors' stem), whose feature is the pooled high-level map."""
  _, method, batch = _setup()
  params, state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  variables = method.backbone_variables(params, state)
  feature = jax.eval_shape(method.backbone().apply, variables, batch['a'])
  assert feature.shape == (8, method.backbone().feature_dim)


@pytest.mark.parametrize(
  'overrides',
  [
    ('mlfo.semantic_head=true',),  # backbone, level heads, semantic head, motion excitation
    # + the augmented input clips' blocks in the backbone and the high-level head.
    pytest.param(('mlfo.aug_levels=()', 'mlfo.input_aug=true'), marks=pytest.mark.slow),
  ],
  ids=['feature_level', 'input_level'],
)
def test_per_device_batchnorm_normalises_each_devices_share_of_every_clip(overrides):
  """model.bn_mode=per_device on 4 devices: the network's outputs and BatchNorm statistics are
  those of running it on each device's share of the batch alone (its rows of a, b and long in
  one call, global statistics there), as a data-parallel run on 4 GPUs computes them. Only
  'reverse' augments, so the augmentations draw nothing random that depends on the batch size."""
  config, single, batch = _setup(
    'model.bn_mode=per_device', 'mlfo.aug_ops=("reverse",)', *overrides
  )
  devices = 4
  grouped = methods.build(config, devices)
  assert grouped.network().bn_groups == devices and single.network().bn_groups == 1
  params, state = jax.jit(single.init)(jax.random.PRNGKey(0), batch)
  variables = {'params': params, 'batch_stats': state['batch_stats']}
  rng = jax.random.PRNGKey(1)

  def apply(method, variables, batch):
    return method._apply(variables, batch, rng, True, mutable=['batch_stats'])

  # The loop's layout: every clip sharded contiguously over 'data', variables replicated.
  mesh = parallel.make_mesh(jax.devices()[:devices])
  sharded = jax.device_put(batch, parallel.data_sharding(mesh))
  variables_r = jax.device_put(variables, parallel.replicated_sharding(mesh))
  out, updates = jax.jit(functools.partial(apply, grouped))(variables_r, sharded)

  share = len(batch['a']) // devices
  per_device = jax.jit(functools.partial(apply, single))
  parts = [
    per_device(variables, {k: v[d * share : (d + 1) * share] for k, v in batch.items()})
    for d in range(devices)
  ]
  want_out = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *(o for o, _ in parts))
  jax.tree_util.tree_map(
    functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5), out, want_out
  )
  # The running statistics move towards the mean of the devices' statistics.
  want_stats = jax.tree_util.tree_map(lambda *xs: np.mean(xs, axis=0), *(u for _, u in parts))
  jax.tree_util.tree_map(
    functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6), updates, want_stats
  )


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
  'override, key',
  [
    ('mlfo.temperature=0.0', r'mlfo\.temperature'),
    ('mlfo.num_prototypes=1', r'mlfo\.num_prototypes'),
    ('mlfo.sinkhorn_epsilon=-1.0', r'mlfo\.sinkhorn_epsilon'),
    ('mlfo.sinkhorn_iterations=0', r'mlfo\.sinkhorn_iterations'),
    ('mlfo.queue_size=12', r'mlfo\.queue_size'),
    ('mlfo.queue_start_step=-1', r'mlfo\.queue_start_step'),
    ('mlfo.graph_levels=("top",)', r'mlfo\.graph_levels'),
    ('mlfo.graph_levels=("mid","mid")', r'mlfo\.graph_levels'),
    ('mlfo.graph_target=soft', r'mlfo\.graph_target'),
    ('mlfo.graph_form=both', r'mlfo\.graph_form'),
    ('mlfo.eta=1.5', r'mlfo\.eta'),
    ('mlfo.graph_start_fraction=1.0', r'mlfo\.graph_start_fraction'),
    ('mlfo.level_weights=(1.0,0.5)', r'mlfo\.level_weights'),
    ('mlfo.aug_ops=("flip",)', r'mlfo\.aug_ops'),
    ('mlfo.aug_ops=()', r'mlfo\.aug_ops'),
    ('mlfo.aug_weight=-0.5', r'mlfo\.aug_weight'),
    ('mlfo.me_reduction=0', r'mlfo\.me_reduction'),
    ('mlfo.input_aug=true', r'mlfo\.input_aug'),  # with the default feature-level aug_levels
    # 8 frames: one high-level timestep, nothing to pool in pairs or to shuffle.
    ('data.num_frames=8', r'mlfo\.retrieval_levels'),
    ('model.backbone=mvit_tiny', r'model\.backbone'),
  ],
)
def test_config_validation_names_the_key(override, key):
  with pytest.raises(ConfigError, match=key):
    tiny_config(override)


def test_aug_levels_need_two_timesteps():
  with pytest.raises(ConfigError, match=r'mlfo\.aug_levels'):
    tiny_config('data.num_frames=8', 'mlfo.retrieval_levels=()')
  tiny_config('data.num_frames=8', 'mlfo.retrieval_levels=()', 'mlfo.aug_levels=("mid","low")')


def test_variants():
  tiny = config_lib.load_config(TINY)
  assert (tiny.model.backbone, tiny.model.width_multiplier, tiny.model.kwargs.stem) == (
    'r3d10',
    0.125,
    'mlfo',
  )
  assert (tiny.data.num_frames, tiny.data.stride, tiny.batch_size) == (16, 1, 32)
  assert 16 <= tiny.mlfo.num_prototypes <= 64
  paper = config_lib.load_config('configs/mlfo.py:r3d18')
  assert (paper.model.backbone, paper.model.kwargs.stem, paper.data.crop_size) == (
    'r3d18',
    'mlfo',
    112,
  )
  assert paper.optim.name == 'adam' and paper.optim.weight_decay == 1e-5
  assert paper.batch_size == 256 and paper.mlfo.num_prototypes == 200
  assert paper.mlfo.queue_size == 1024 and paper.mlfo.queue_start_step == 10 * 37
  from jaxvssl import optim  # pylint: disable=g-import-not-at-top

  schedule = optim.make_schedule(paper)
  np.testing.assert_allclose(float(schedule(0)), 1e-3)
  np.testing.assert_allclose(float(schedule(200 * 37 - 1)), 1e-3)
  np.testing.assert_allclose(float(schedule(200 * 37 + 1)), 1e-4, rtol=1e-5)
  k400 = config_lib.load_config('configs/mlfo.py:r3d18_k400')
  assert k400.mlfo.num_prototypes == 1000 and k400.data.name == 'kinetics/k400'
  assert tuple(k400.optim.step_boundaries) == (0.7,)
  s3d = config_lib.load_config('configs/mlfo.py:s3d')
  assert s3d.model.backbone == 's3d' and not s3d.model.kwargs
  code = config_lib.load_config('configs/mlfo.py:tiny_code')
  assert code.mlfo.graph_form == 'code' and tuple(code.mlfo.aug_levels) == ('mid', 'low')


def test_s3d_levels_have_the_r3d_timesteps():
  """S3D's stages 2-4 halve T like the R3D's: 8 / 4 / 2 timesteps at 16 frames."""
  config = config_lib.load_config('configs/mlfo.py:s3d', ('model.width_multiplier=0.125',))
  backbone = methods.build(config, 1).backbone()
  x = jax.ShapeDtypeStruct((1, 16, 32, 32, 3), jnp.float32)
  _, stages = jax.eval_shape(
    lambda x: backbone.init_with_output(jax.random.PRNGKey(0), x, return_stages=True)[0], x
  )
  for level, stage in mlfo.LEVEL_STAGES.items():
    assert stages[stage].shape[1] == 16 // mlfo.LEVEL_FRAMES_PER_STEP[level], level


# --- training --------------------------------------------------------------------------------

LOSS_KEYS = ('loss', 'instance_loss', 'semantic_loss', 'graph_loss/mid', 'retrieval_loss/high')


def test_tiny_trains_two_finite_steps(tmp_path):
  ts = helpers.run_training(tiny_config('num_steps=2'), tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in LOSS_KEYS + ('aug_loss/low', 'instance_accuracy'):
      assert np.isfinite(record[key]), key
  assert int(ts.state['queues']['a'].pointer) == 0  # 2 batches of 8 in a queue of 16


@pytest.mark.slow
def test_tiny_8_devices_equal_1_device_and_resume_is_exact(tmp_path):
  """Sinkhorn, graph and BatchNorm act on the global batch: 8 devices give 1 device's losses;
  an interrupted run resumes exactly, queues included. Three steps cover the queue filling
  (step 0), the queue and the graph losses in use (steps 1, 2)."""
  # SGD, not the variant's Adam: Adam divides by sqrt(v), which turns the float32 reassociation
  # noise of near-zero gradients over 8 shards into lr-sized steps.
  config = tiny_config('optim.name=sgd', 'optim.base_learning_rate=0.05')
  _, a = helpers.check_devices_and_resume(config, tmp_path, LOSS_KEYS, compare='state')
  assert [a[s]['queue_in_use'] for s in (1, 2, 3)] == [0.0, 0.0, 1.0]  # full after 2 batches
  assert [a[s]['graph_on'] for s in (1, 2, 3)] == [0.0, 1.0, 1.0]


@pytest.mark.slow
def test_paper_size_r3d18_two_steps_on_cpu(tmp_path):
  """2 steps of configs/mlfo.py:r3d18 (R3D-18, authors' stem, 3 clips of 16 x 112 x 112,
  K = 200) at batch 2 on CPU."""
  config = config_lib.load_config(
    'configs/mlfo.py:r3d18',
    (
      'batch_size=2',
      'num_steps=2',
      'mlfo.queue_size=4',
      'mlfo.queue_start_step=1',
      'log_every_steps=1',
      'checkpoint_every_steps=2',
      'async_checkpointing=false',
      'progress_bar=false',
    ),
  )
  helpers.run_training(config, tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in LOSS_KEYS:
      assert np.isfinite(record[key]), key

"""cacl: shapes through G and T, the four-positive loss, the frozen frame encoder, SDP labels,
sharded == single device, resume, and frame-encoder checkpoint errors."""

import functools
import itertools
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import checkpointing, config as config_lib, errors, methods, optim, runs
from jaxvssl import state as state_lib
from jaxvssl.inputs import permutations
from jaxvssl.methods import cacl as cacl_lib, frames as frames_lib
from tests import helpers

FRAMES = {
  'frames.encoder': 'resnet10',
  'frames.width_multiplier': 1 / 16,
  'frames.queue_size': 16,
  'frames.embed_dim': 8,
}


def cacl_config(frames_dir, **overrides):
  values = {
    'cacl.frame_encoder': 'resnet10',
    'cacl.frame_encoder_width': 1 / 16,
    'cacl.frame_encoder_workdir': str(frames_dir),
    'cacl.queue_size': 32,
    'cacl.embed_dim': 8,
    'cacl.transformer_dim': 8,
    'cacl.transformer_layers': 1,
    'cacl.transformer_heads': 2,
    'cacl.sdp_hidden_dim': 8,
    'cacl.momentum': 0.9,
    'cacl.temperature': 0.2,
    'cacl.sdp_bank_size': 8,
    'batch_size': 4,
    'num_steps': 2,
  }
  values.update(overrides)
  return helpers.tiny_config('cacl', **values)


def save_run(workdir, config):
  """A run directory (config.json + one checkpoint at init) without compiling a train step."""
  config_lib.save_config(config, str(workdir))
  method = methods.build(config, 1)
  tx = optim.make_optimizer(config)
  ts = jax.jit(functools.partial(state_lib.init_train_state, method, tx, seed=3))(
    method.example_batch(2)
  )
  manager = checkpointing.make_manager(str(workdir), 1, 1, async_save=False)
  checkpointing.save(manager, 1, ts, force=True)
  manager.wait_until_finished()
  return method, ts


def save_frames_run(workdir, **overrides):
  """A frames run directory; returns its frame-encoder variables."""
  method, ts = save_run(workdir, helpers.tiny_config('frames', **{**FRAMES, **overrides}))
  return method.frame_encoder_variables(ts.params, ts.state)


def init_and_load_pretrained(config):
  """What the loop does on a fresh start: init, then the pretrained-weights hook."""
  method = methods.build(config, 1)
  params, state = method.init(jax.random.PRNGKey(0), method.example_batch(2))
  return method.load_pretrained(params, state, runs.load_run)


@pytest.fixture(scope='module')
def frames_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('frames_run')
  return workdir, save_frames_run(workdir)


def sdp_batches(config, method, start_step=0):
  """helpers.fake_batches with valid permutations and their true shuffle-degree classes."""
  for step, batch in enumerate(helpers.fake_batches(config, method, start_step), start_step):
    perms, labels = method.sampler.sample(config.batch_size, np.random.default_rng([7, step]))
    batch['sdp_perm'], batch['sdp_label'] = perms, labels
    yield batch


def first_batch(config, method):
  return jax.tree_util.tree_map(jnp.asarray, next(sdp_batches(config, method)))


def test_shapes_through_g_and_t(frames_run):
  config = cacl_config(frames_run[0])
  method = methods.build(config, 1)
  batch = first_batch(config, method)
  params, state = method.init(jax.random.PRNGKey(0), batch)
  b, f = config.batch_size, config.data.num_frames
  assert set(params) == {'backbone', 'contrast_head', 'sdp_head', 'transformer', 'transformer_head'}
  net = method.network()
  variables = {'params': params, 'batch_stats': state['batch_stats']}
  x = batch['query']
  gq, logits = net.apply(
    variables,
    x,
    cacl_lib.permute_frames(x, batch['sdp_perm']),
    train=False,
    method=cacl_lib.CACLNet.encode_video,
  )
  assert gq.shape == (b, 8) and logits.shape == (b, f)  # F frames -> F shuffle-degree classes
  # G runs on x and x~ separately; the concatenated features feed both heads.
  feature = method.backbone().apply(method.backbone_variables(params, state), x, train=False)
  assert params['contrast_head']['out']['kernel'].shape == (2 * feature.shape[-1], 8)
  assert params['sdp_head']['hidden0']['kernel'].shape == (2 * feature.shape[-1], 8)
  tokens = method.tokens(state['frame_encoder'], x, batch['sdp_perm'])
  fe_dim = params['transformer']['embed']['kernel'].shape[0]
  assert tokens.shape == (b, 2 * f, fe_dim)  # [x, x~]: 2F frame tokens
  # The second half is the first half permuted (frozen features of x~ = features of x permuted).
  np.testing.assert_allclose(
    tokens[:, f:], cacl_lib.permute_frames(tokens[:, :f], batch['sdp_perm'])
  )
  tq = net.apply({'params': params}, tokens, train=False, method=cacl_lib.CACLNet.encode_tokens)
  assert tq.shape == (b, 8)
  assert params['transformer']['pos_embed'].shape == (1, 1 + 2 * f, 8)


def test_difference_tokens_read_frame_differences(tmp_path):
  """`frame_input='difference'`: T reads the frame-difference features of x, then of x~
  (differences taken after the shuffle), 2(F - 1) tokens; a frames run on other input is refused."""
  diff_run = tmp_path / 'diff_run'
  save_frames_run(diff_run, **{'frames.input': 'difference'})
  config = cacl_config(diff_run, **{'cacl.frame_input': 'difference'})
  method = methods.build(config, 1)
  batch = first_batch(config, method)
  params, state = init_and_load_pretrained(config)
  b, f = config.batch_size, config.data.num_frames
  x, perm = batch['query'], batch['sdp_perm']
  tokens = method.tokens(state['frame_encoder'], x, perm)
  assert tokens.shape[:2] == (b, 2 * (f - 1))
  frames_net = methods.build(helpers.tiny_config('frames', **FRAMES), 1).frame_encoder()
  encode = lambda images: frames_net.apply(state['frame_encoder'], images, train=False)
  x_np = np.asarray(x)
  shuffled = np.stack([x_np[i, np.asarray(perm[i])] for i in range(b)])
  for half, clip in ((0, x_np), (1, shuffled)):
    diffs = (clip[:, 1:] - clip[:, :-1]).reshape((-1,) + clip.shape[2:])
    expected = np.asarray(encode(jnp.asarray(diffs))).reshape(b, f - 1, -1)
    got = tokens[:, half * (f - 1) : (half + 1) * (f - 1)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  with pytest.raises(errors.PretrainedWeightsError, match=r"input mismatch.*'difference'.*'rgb'"):
    init_and_load_pretrained(cacl_config(diff_run))
  with pytest.raises(config_lib.ConfigError, match=r'cacl\.frame_input'):
    cacl_config(diff_run, **{'cacl.frame_input': 'flow'})
  with pytest.raises(config_lib.ConfigError, match=r'frames\.input'):
    helpers.tiny_config('frames', **{**FRAMES, 'frames.input': 'flow'})


def _reference_loss(pos, neg, aggregation):
  """-log(sum_p e^pos / (sum_p e^pos + sum_n e^neg)) or the mean of one-positive terms (NumPy)."""
  pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
  neg_sum = np.exp(neg).sum(-1)
  if aggregation == 'sum':
    return -np.log(np.exp(pos).sum(-1) / (np.exp(pos).sum(-1) + neg_sum))
  return np.mean(-np.log(np.exp(pos) / (np.exp(pos) + neg_sum[:, None])), axis=-1)


@pytest.mark.parametrize(
  'pairs, aggregation',
  [
    (('gq_gk', 'gq_tq', 'gq_tk', 'tq_tk'), 'sum'),
    (('gq_gk', 'gq_tq', 'gq_tk', 'tq_tk'), 'independent'),
    (('gq_gk', 'gq_tk'), 'sum'),
  ],
)
def test_four_positive_loss_matches_hand_built_logits(frames_run, pairs, aggregation):
  config = cacl_config(
    frames_run[0],
    **{
      'cacl.positive_pairs': pairs,
      'cacl.positive_aggregation': aggregation,
      'cacl.sdp_weight': 0.0,
    },
  )
  method = methods.build(config, 1)
  batch = first_batch(config, method)
  params, state = method.init(jax.random.PRNGKey(1), batch)
  loss, (metrics, new_state) = method.loss_fn(
    params, state, batch, jax.random.PRNGKey(2), jnp.zeros((), jnp.int32)
  )
  # The four embeddings, computed independently of loss_fn.
  net, perms, tau = method.network(), batch['sdp_perm'], config.cacl.temperature
  shuffled = lambda v: cacl_lib.permute_frames(v, perms)
  encode = lambda p, bs, v: net.apply(
    {'params': p, 'batch_stats': bs},
    v,
    shuffled(v),
    train=True,
    with_sdp=False,
    mutable=['batch_stats'],
    method=cacl_lib.CACLNet.encode_video,
  )[0][0]
  unit = lambda v: np.asarray(v) / np.linalg.norm(np.asarray(v), axis=-1, keepdims=True)
  gq = unit(encode(params, state['batch_stats'], batch['query']))
  gk = unit(encode(state['key_params'], state['key_batch_stats'], batch['key']))
  t_of = lambda p, v: unit(
    net.apply(
      {'params': p},
      method.tokens(state['frame_encoder'], v, perms),
      train=False,
      method=cacl_lib.CACLNet.encode_tokens,
    )
  )
  tq, tk = t_of(params, batch['query']), t_of(state['key_params'], batch['key'])
  cos = {
    'gq_gk': (gq * gk).sum(-1),
    'gq_tq': (gq * tq).sum(-1),
    'gq_tk': (gq * tk).sum(-1),
    'tq_tk': (tq * tk).sum(-1),
  }
  pos = np.stack([cos[p] for p in pairs], -1) / tau
  neg = gq @ np.asarray(state['queue'].keys).T / tau
  expected = _reference_loss(pos, neg, aggregation)
  np.testing.assert_allclose(float(loss), expected.mean(), rtol=1e-4)
  # The same numbers through the shared objective.
  np.testing.assert_allclose(
    float(loss),
    float(jnp.mean(cacl_lib.objectives.multi_positive_info_nce(pos, neg, aggregation))),
    rtol=1e-4,
  )
  for name, value in cos.items():  # Table 3 diagnostics
    np.testing.assert_allclose(float(metrics[f'similarity/{name}']), value.mean(), atol=1e-5)
  off_diagonal = ~np.eye(len(gq), dtype=bool)  # the same cosines to the other videos' keys
  for name, (a, b) in {'gq_gk_other': (gq, gk), 'tq_tk_other': (tq, tk)}.items():
    expected_other = (a @ b.T)[off_diagonal].mean()
    np.testing.assert_allclose(float(metrics[f'similarity/{name}']), expected_other, atol=1e-5)
  # The queue receives the G keys then the T keys (the released code enqueues both).
  np.testing.assert_allclose(np.asarray(new_state['queue'].keys[:4]), gk, atol=1e-5)
  np.testing.assert_allclose(np.asarray(new_state['queue'].keys[4:8]), tk, atol=1e-5)
  assert int(new_state['queue'].pointer) == 8


_run = functools.partial(helpers.run_training, batches=sdp_batches)


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return {r['step']: r for r in map(json.loads, f) if 'loss' in r}


@pytest.mark.slow
def test_frozen_encoder_sharded_equals_single_and_resume(frames_run, tmp_path):
  """One set of runs, several properties (each train-step compile is costly on this CPU).

  Slow: five train-loop runs (1 device, 8 devices, interrupted + resumed): ~45 s on a quiet
  2-core CPU, several minutes under load.
  """
  frames_dir, trained_encoder = frames_run
  config = cacl_config(frames_dir, batch_size=8, **{'cacl.queue_size': 48})
  one = _run(config, tmp_path / 'one', jax.devices()[:1])
  eight = _run(config, tmp_path / 'eight', jax.devices()[:8])

  # Frozen: identical to the frames checkpoint after the optimizer steps, never in params, and
  # the optimizer state mirrors params only.
  for ts in (one, eight):
    jax.tree_util.tree_map(
      np.testing.assert_array_equal, jax.device_get(ts.state['frame_encoder']), trained_encoder
    )
    assert 'frame_encoder' not in ts.params
    for path, _ in jax.tree_util.tree_flatten_with_path(ts.opt_state)[0]:
      assert 'frame_encoder' not in jax.tree_util.keystr(path)
    momentum = ts.opt_state[-1][0].trace  # sgd momentum buffer: same tree as params
    assert jax.tree_util.tree_structure(momentum) == jax.tree_util.tree_structure(ts.params)
  # ... while the trainable T (and G) did move: same init as state.init_train_state.
  method = methods.build(config, 1)
  initial, _ = method.init(
    jax.random.split(jax.random.PRNGKey(config.seed))[0], first_batch(config, method)
  )
  for name in ('transformer', 'backbone'):
    moved = [
      not np.allclose(x, y)
      for x, y in zip(
        jax.tree_util.tree_leaves(initial[name]), jax.tree_util.tree_leaves(one.params[name])
      )
    ]
    assert any(moved), name

  # 8 fake devices == 1 device on the same global batches.
  a, b = _losses(tmp_path / 'one'), _losses(tmp_path / 'eight')
  for step in a:
    for key in ('loss', 'sdp_accuracy', 'contrastive_loss', 'similarity/gq_tk'):
      np.testing.assert_allclose(a[step][key], b[step][key], rtol=1e-4, atol=1e-5, err_msg=key)
  for x, y in zip(jax.tree_util.tree_leaves(one.params), jax.tree_util.tree_leaves(eight.params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)

  # Interrupted after step 1 and resumed == straight: both momentum encoders (G and T keys),
  # the key BN statistics, the queue and its pointer are restored.
  _run(config, tmp_path / 'resumed', jax.devices()[:1], stop_after=1)
  resumed = _run(config, tmp_path / 'resumed', jax.devices()[:1])
  for part in ('key_params', 'key_batch_stats', 'batch_stats', 'frame_encoder'):
    for x, y in zip(
      jax.tree_util.tree_leaves(one.state[part]), jax.tree_util.tree_leaves(resumed.state[part])
    ):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6, err_msg=part)
  assert set(one.state['key_params']) == {
    'backbone',
    'contrast_head',
    'transformer',
    'transformer_head',
  }
  np.testing.assert_allclose(one.state['queue'].keys, resumed.state['queue'].keys, atol=1e-6)
  assert int(one.state['queue'].pointer) == int(resumed.state['queue'].pointer) == 32


def test_checkpoint_evaluates_and_resumes_without_the_frames_run(tmp_path):
  """The frozen encoder enters through the loop's hook once; afterwards the checkpoint has it."""
  frames_dir = tmp_path / 'frames'
  trained_encoder = save_frames_run(frames_dir)
  config = cacl_config(frames_dir)
  workdir = tmp_path / 'cacl'
  _run(config, workdir, jax.devices()[:1], stop_after=1)
  shutil.rmtree(frames_dir)

  # Evaluate: the run restores with its encoder, which is the frames run's.
  run = runs.load_run(str(workdir))
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, jax.device_get(run.state['frame_encoder']), trained_encoder
  )
  embed = runs.embed_fn_from_state(run.config, run.method, run.params, run.state)
  assert embed(np.zeros((2, 4, 16, 16, 3), np.float32)).shape[0] == 2
  # Resume: the hook is not called again (it would fail: the directory is gone).
  resumed = _run(config, workdir, jax.devices()[:1])
  assert int(resumed.step) == config.num_steps
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, jax.device_get(resumed.state['frame_encoder']), trained_encoder
  )
  # A fresh start does need the frames run, and says so in one line.
  with pytest.raises(errors.PretrainedWeightsError, match='frames.*does not exist'):
    _run(config, tmp_path / 'fresh', jax.devices()[:1])


def _video_source(num_videos=6, length=12, size=20):
  """Skip-decoded TFDS-format videos whose frame t is a flat image of value 20 * t."""
  from jaxvssl.tf_setup import import_tensorflow  # pylint: disable=g-import-not-at-top

  tf = import_tensorflow()
  frames = tf.stack(
    [
      tf.io.encode_jpeg(np.full([size, size, 3], 20 * t, np.uint8), quality=100)
      for t in range(length)
    ]
  )
  examples = {
    'video': tf.stack([frames] * num_videos),
    'label': tf.range(num_videos, dtype=tf.int64) % 2,
    'video_id': tf.constant([f'v{i}' for i in range(num_videos)]),
    'num_frames': tf.fill([num_videos], length),
    'fps': tf.fill([num_videos], 8.0),
    'motion_scores': tf.zeros([num_videos, 2]),
  }
  return tf.data.Dataset.from_tensor_slices(examples)


def test_sdp_labels_match_permutations_applied_to_frames(frames_run):
  config = cacl_config(
    frames_run[0],
    **{
      'data.num_frames': 6,
      'data.stride': 2,
      'data.color_jitter_prob': 0.0,
      'data.grayscale_prob': 0.0,
      'data.blur_prob': 0.0,
      'data.mean': (0.0, 0.0, 0.0),
      'data.std': (1.0, 1.0, 1.0),
      'data.num_parallel_calls': 1,
      'data.shuffle_buffer': 8,
      'cacl.sdp_bank_size': 64,
      'cacl.queue_size': 48,
      'batch_size': 6,
    },
  )
  method = methods.build(config, 1)
  ds = method.train_dataset(
    global_batch_size=6,
    seed=0,
    process_index=0,
    process_count=1,
    start_step=0,
    source=_video_source(),
  )
  labels, seen = [], set()
  for batch in ds.take(4).as_numpy_iterator():
    assert batch['sdp_perm'].shape == (6, 6) and batch['sdp_label'].shape == (6,)
    frame_id = lambda clips: np.round(clips.mean(axis=(2, 3, 4)) * 255 / 20).astype(int)
    for view in ('query', 'key'):
      ids = frame_id(batch[view])  # [B, T]
      shuffled_ids = frame_id(
        np.asarray(
          cacl_lib.permute_frames(jnp.asarray(batch[view]), jnp.asarray(batch['sdp_perm']))
        )
      )
      for row, shuffled_row, label in zip(ids, shuffled_ids, batch['sdp_label']):
        # Recover the order from the pixels: position of each shuffled frame in the clip.
        order = [list(row).index(v) for v in shuffled_row]
        distance = permutations.levenshtein(order, range(len(order)))
        assert label == (0 if distance == 0 else distance - 1), (order, label)
    # Query and key are the same frames (one clip, two augmentations).
    np.testing.assert_array_equal(frame_id(batch['query']), frame_id(batch['key']))
    labels.extend(batch['sdp_label'])
    seen.update(map(tuple, batch['sdp_perm']))
  assert len(set(labels)) >= 4 and len(seen) > 8  # uniform classes: several degrees show up


def test_sdp_star_class_probabilities_follow_random_permutations():
  config = helpers.tiny_config(
    'cacl', **{'cacl.sdp_uniform': False, 'cacl.contrastive_weight': 0.0, 'data.num_frames': 5}
  )
  method = methods.build(config, 1)
  probs = method.sdp_class_probs()
  # Exact class frequencies of the 120 permutations of 5 frames.
  exact = np.bincount(
    permutations.distance_to_class(
      permutations.batch_levenshtein(np.array(list(itertools.permutations(range(5)))), np.arange(5))
    ),
    minlength=5,
  )
  np.testing.assert_allclose(probs, exact / exact.sum(), atol=0.01)
  assert probs[0] < 0.02 and probs.max() > 0.4  # far from uniform: what SDP* ablates
  assert method.views()[0].name == 'query' and len(method.views()) == 1  # SDP only: no key view


def test_missing_frame_encoder_checkpoint_is_a_clear_error(tmp_path):
  missing = tmp_path / 'no_such_run'
  config = cacl_config(missing)
  with pytest.raises(errors.PretrainedWeightsError, match='no_such_run.*does not exist'):
    init_and_load_pretrained(config)


def test_mismatched_frame_encoder_checkpoint_is_a_clear_error(frames_run, tmp_path):
  frames_dir, variables = frames_run
  # Another architecture than config.cacl expects: the error names both.
  config = cacl_config(frames_dir, **{'cacl.frame_encoder_width': 1 / 8})
  with pytest.raises(
    errors.PretrainedWeightsError, match=r'frames_run.*architecture mismatch.*0\.0625.*0\.125'
  ):
    init_and_load_pretrained(config)
  # Not a frames run.
  moco_dir = tmp_path / 'moco_run'
  save_run(moco_dir, helpers.tiny_config('moco'))
  with pytest.raises(errors.PretrainedWeightsError, match="moco_run.*'moco' run"):
    frames_lib.load_frame_encoder(
      runs.load_run, str(moco_dir), encoder='resnet10', width_multiplier=1 / 16, expected=variables
    )
  # Variables whose names/shapes differ: listed, never a partial load.
  broken = jax.tree_util.tree_map(np.asarray, variables)
  broken['params'] = dict(broken['params'])
  broken['params'].pop('stem_conv')
  message = frames_lib.describe_mismatch(variables, broken)
  assert 'missing' in message and 'stem_conv' in message
  assert frames_lib.describe_mismatch(variables, variables) == ''


def test_config_validation_names_keys(frames_run):
  with pytest.raises(config_lib.ConfigError, match=r'cacl\.positive_pairs'):
    cacl_config(frames_run[0], **{'cacl.positive_pairs': ('gq_gk', 'gk_tq')})
  with pytest.raises(config_lib.ConfigError, match=r'cacl\.queue_size.*G and T keys'):
    cacl_config(frames_run[0], **{'cacl.queue_size': 36})
  with pytest.raises(config_lib.ConfigError, match=r'cacl\.frame_encoder_workdir'):
    cacl_config('')
  # Without T no frame encoder is needed (V-MoCo rows).
  cacl_config('', **{'cacl.positive_pairs': ('gq_gk',)})


def test_table_configs_define_the_ablation_rows():
  load = lambda row: config_lib.load_config(f'configs/cacl.py:{row}.tiny').cacl
  assert load('sdp').contrastive_weight == 0 and load('sdp_star').sdp_uniform is False
  assert load('vmoco').sdp_weight == 0 and load('vmoco').positive_pairs == ('gq_gk',)
  assert load('sdp_vmoco_t').positive_pairs == cacl_lib.POSITIVE_PAIRS
  table2 = [
    load(r).positive_pairs for r in ('pairs_gg', 'pairs_gg_gtq', 'pairs_gg_gtq_gtk', 'pairs_all')
  ]
  assert table2 == [cacl_lib.POSITIVE_PAIRS[:n] for n in (1, 2, 3, 4)]
  paper = config_lib.load_config('configs/cacl.py:sdp_vmoco_t.c3d')
  assert (
    paper.batch_size,
    paper.optim.base_learning_rate,
    paper.optim.weight_decay,
    paper.cacl.queue_size,
    paper.cacl.temperature,
    paper.cacl.momentum,
    paper.data.num_frames,
    paper.data.crop_size,
  ) == (64, 1e-3, 5e-4, 6400, 0.07, 0.999, 16, 112)
  assert paper.num_steps == 300 * (9537 // 64)


# --- options for the ablation experiments (docs/methods/cacl.md) ------------------------------


def _unit(v):
  v = np.asarray(v, np.float64)
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _hand_keys(method, state, batch, key_perms, shuffled_first=False, order=None):
  """Gk and Tk computed outside loss_fn: the key pair [x_k, x~_k] (or [x~_k, x_k]) through the
  momentum G (optionally with the batch rows in `order`, then restored) and T."""
  net = method.network()
  xk = batch['key']
  pair = jnp.stack([xk, cacl_lib.permute_frames(xk, key_perms)], axis=1)
  if order is not None:
    pair = pair[order]
  (gk, _), updates = net.apply(
    {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
    pair[:, 0],
    pair[:, 1],
    train=True,
    with_sdp=False,
    shuffled_first=shuffled_first,
    mutable=['batch_stats'],
    method=cacl_lib.CACLNet.encode_video,
  )
  if order is not None:
    gk = gk[np.argsort(order)]
  feats = method.frame_features(state['frame_encoder'], xk)
  shuffled = cacl_lib.permute_frames(feats, key_perms)
  tokens = jnp.concatenate([shuffled, feats] if shuffled_first else [feats, shuffled], axis=1)
  tk = net.apply(
    {'params': state['key_params']}, tokens, train=False, method=cacl_lib.CACLNet.encode_tokens
  )
  return _unit(gk), _unit(tk), updates['batch_stats']


def _loss(method, params, state, batch, rng=2, step=0):
  return method.loss_fn(params, state, batch, jax.random.PRNGKey(rng), jnp.asarray(step, jnp.int32))


def _setup(frames_dir, **overrides):
  config = cacl_config(frames_dir, **overrides)
  method = methods.build(config, 1)
  batch = first_batch(config, method)
  params, state = method.init(jax.random.PRNGKey(1), batch)
  return config, method, batch, params, state


def _input_sensitive_key_t(state):
  """`state` whose momentum T depends on its tokens and their order.

  At init the CLS output is dominated by the CLS token and its position embedding (the attention
  adds ~0.02^2-scaled values to them and every block is pre-LayerNorm, so scaling the tokens does
  not help): both are zeroed, and the tokens' position embeddings scaled up.
  """
  key_params = dict(state['key_params'])
  transformer = dict(key_params['transformer'])
  transformer['cls_token'] = jnp.zeros_like(transformer['cls_token'])
  pos = transformer['pos_embed']
  transformer['pos_embed'] = jnp.concatenate([jnp.zeros_like(pos[:, :1]), 50.0 * pos[:, 1:]], 1)
  key_params['transformer'] = transformer
  return dict(state, key_params=key_params)


def test_transformer_negatives_add_an_info_nce_anchored_on_tq(frames_run):
  base = {'cacl.sdp_weight': 0.0}
  _, plain, batch, params, state = _setup(frames_run[0], **base)
  config, method, _, _, _ = _setup(
    frames_run[0],
    **base,
    **{'cacl.transformer_negatives': True, 'cacl.transformer_negatives_weight': 0.5},
  )
  loss0, (metrics0, _) = _loss(plain, params, state, batch)
  loss, (metrics, _) = _loss(method, params, state, batch)
  # Tq, Tk by hand; Tq's negatives: the queue (G and T keys of earlier steps).
  net, tau = method.network(), config.cacl.temperature
  tq = _unit(
    net.apply(
      {'params': params},
      method.tokens(state['frame_encoder'], batch['query'], batch['sdp_perm']),
      train=False,
      method=cacl_lib.CACLNet.encode_tokens,
    )
  )
  _, tk, _ = _hand_keys(method, state, batch, batch['sdp_perm'])
  pos = (tq * tk).sum(-1, keepdims=True) / tau
  neg = tq @ np.asarray(state['queue'].keys, np.float64).T / tau
  expected = _reference_loss(pos, neg, 'sum').mean()  # one positive: plain InfoNCE
  np.testing.assert_allclose(float(metrics['transformer_nce_loss']), expected, rtol=1e-4)
  np.testing.assert_allclose(float(loss) - float(loss0), 0.5 * expected, rtol=1e-3, atol=1e-5)
  # Everything else is the default path's.
  for key, value in metrics0.items():
    np.testing.assert_array_equal(np.asarray(metrics[key]), np.asarray(value), err_msg=key)
  assert (
    'transformer_nce_loss' not in metrics0 and 0 <= float(metrics['transformer_nce_accuracy']) <= 1
  )


def test_transformer_momentum_updates_the_t_key_copy_alone(frames_run):
  config, method, _, params, state = _setup(frames_run[0], **{'cacl.transformer_momentum': 0.5})
  _, default, _, _, _ = _setup(frames_run[0])
  moved = jax.tree_util.tree_map(lambda p: p + 1.0, params)
  new = method.after_update(moved, state, 0)['key_params']
  old = default.after_update(moved, state, 0)['key_params']
  assert set(cacl_lib.TRANSFORMER_PARAMS) <= set(new)
  for name in new:
    m = 0.5 if name in cacl_lib.TRANSFORMER_PARAMS else config.cacl.momentum
    for k, q, got, same in zip(
      *(jax.tree_util.tree_leaves(t[name]) for t in (state['key_params'], moved, new, old))
    ):
      np.testing.assert_allclose(got, m * k + (1 - m) * q, rtol=1e-6, atol=1e-6)
      # The default (-1): one momentum (0.9 here) for G and T.
      np.testing.assert_allclose(same, 0.9 * k + 0.1 * q, rtol=1e-6, atol=1e-6)


def test_tq_tk_collapse_step_is_the_first_step_over_the_threshold(frames_run):
  # A randomly initialised T maps every clip close to one direction (its CLS token and position
  # embedding dominate): cos(Tq, Tk) is already 0.9999 here, hence the high threshold.
  threshold = 0.999999
  _, method, batch, params, state = _setup(
    frames_run[0], **{'cacl.tq_tk_collapse_threshold': threshold}
  )
  assert int(state['tq_tk_collapse_step']) == -1
  _, (metrics, state1) = _loss(method, params, state, batch, step=3)
  assert float(metrics['similarity/tq_tk']) < threshold  # two different clips
  assert int(state1['tq_tk_collapse_step']) == -1 == int(metrics['collapse_step/tq_tk'])
  # The key clip = the query clip: T's momentum copy (= T at init) gives Tk = Tq, cos 1.
  same = dict(batch, key=batch['query'])
  _, (metrics, state2) = _loss(method, params, state1, same, step=4)
  assert float(metrics['similarity/tq_tk']) > threshold
  assert int(state2['tq_tk_collapse_step']) == 5 == int(metrics['collapse_step/tq_tk'])
  _, (_, state3) = _loss(method, params, state2, same, step=9)
  assert int(state3['tq_tk_collapse_step']) == 5  # the first step is kept
  _, default, _, _, default_state = _setup(frames_run[0])
  assert 'tq_tk_collapse_step' not in default_state  # off by default: the state is unchanged


def test_key_shuffle_independent_uses_the_keys_own_permutation(frames_run):
  overrides = {'cacl.sdp_weight': 0.0, 'cacl.key_shuffle': 'independent'}
  _, shared, batch, params, state = _setup(frames_run[0], **{'cacl.sdp_weight': 0.0})
  config, method, _, _, _ = _setup(frames_run[0], **overrides)
  assert set(method.example_batch(2)) == {
    'query',
    'key',
    'sdp_perm',
    'sdp_label',
    'sdp_key_perm',
    'sdp_key_label',
  }
  # The key's permutation = the query's: exactly the shared path.
  loss0, (metrics0, state0) = _loss(shared, params, state, batch)
  same = dict(batch, sdp_key_perm=batch['sdp_perm'], sdp_key_label=batch['sdp_label'])
  loss1, (metrics1, state1) = _loss(method, params, state, same)
  assert float(loss0) == float(loss1)
  np.testing.assert_array_equal(state0['queue'].keys, state1['queue'].keys)
  # Its own permutation: Gk and Tk are those of [x_k, x_k[key_perm]].
  key_perms, _ = method.sampler.sample(config.batch_size, np.random.default_rng(11))
  assert (key_perms != np.asarray(batch['sdp_perm'])).any()
  own = dict(batch, sdp_key_perm=jnp.asarray(key_perms), sdp_key_label=batch['sdp_label'])
  loss2, (_, state2) = _loss(method, params, state, own)
  gk, tk, stats = _hand_keys(method, state, own, jnp.asarray(key_perms))
  b = config.batch_size
  np.testing.assert_allclose(state2['queue'].keys[:b], gk, atol=1e-5)
  np.testing.assert_allclose(state2['queue'].keys[b : 2 * b], tk, atol=1e-5)
  jax.tree_util.tree_map(
    functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
    state2['key_batch_stats'],
    stats,
  )
  assert float(loss2) != float(loss0)


def test_key_shuffle_independent_in_the_pipeline_keeps_the_query_draws(frames_run):
  """The key's permutation is a second extra of the same sampler: the query's permutation, its
  label and both clips are exactly those of the shared pipeline."""
  data = {
    'data.num_frames': 6,
    'data.stride': 1,
    'data.num_parallel_calls': 1,
    'data.shuffle_buffer': 8,
    'cacl.sdp_bank_size': 64,
    'cacl.queue_size': 48,
    'batch_size': 6,
  }
  out = {}
  for key_shuffle in ('shared', 'independent'):
    config = cacl_config(frames_run[0], **data, **{'cacl.key_shuffle': key_shuffle})
    ds = methods.build(config, 1).train_dataset(
      global_batch_size=6,
      seed=0,
      process_index=0,
      process_count=1,
      start_step=0,
      source=_video_source(),
    )
    out[key_shuffle] = list(ds.take(3).as_numpy_iterator())
  for shared, independent in zip(out['shared'], out['independent']):
    for key in ('query', 'key', 'sdp_perm', 'sdp_label'):
      np.testing.assert_array_equal(shared[key], independent[key], err_msg=key)
    assert 'sdp_key_perm' not in shared and independent['sdp_key_perm'].shape == (6, 6)
    labels = permutations.distance_to_class(
      permutations.batch_levenshtein(independent['sdp_key_perm'], np.arange(6))
    )
    np.testing.assert_array_equal(labels, independent['sdp_key_label'])
  assert any((b['sdp_key_perm'] != b['sdp_perm']).any() for b in out['independent'])


def test_key_order_released_feeds_the_key_pair_as_shuffled_then_clip(frames_run):
  """Released code (datasets/ucf101.py lines 324-345): the key is stacked [x~_k, x_k]."""
  _, paper, batch, params, state = _setup(frames_run[0], **{'cacl.sdp_weight': 0.0})
  config, method, _, _, _ = _setup(
    frames_run[0], **{'cacl.sdp_weight': 0.0, 'cacl.key_order': 'released'}
  )
  state = _input_sensitive_key_t(state)
  _, (_, new_state) = _loss(method, params, state, batch)
  gk, tk, stats = _hand_keys(method, state, batch, batch['sdp_perm'], shuffled_first=True)
  b = config.batch_size
  np.testing.assert_allclose(new_state['queue'].keys[:b], gk, atol=1e-5)
  np.testing.assert_allclose(new_state['queue'].keys[b : 2 * b], tk, atol=1e-5)
  jax.tree_util.tree_map(
    functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
    new_state['key_batch_stats'],
    stats,
  )
  # ... which is not the paper's [x_k, x~_k].
  gk0, tk0, _ = _hand_keys(method, state, batch, batch['sdp_perm'])
  assert not np.allclose(gk, gk0, atol=1e-3) and not np.allclose(tk, tk0, atol=1e-3)
  _, (_, paper_state) = _loss(paper, params, state, batch)
  np.testing.assert_allclose(paper_state['queue'].keys[:b], gk0, atol=1e-5)


def test_sdp_sampler_released_draws_the_code_shuffle_with_exact_labels():
  config = helpers.tiny_config(
    'cacl', **{'cacl.sdp_sampler': 'released', 'cacl.contrastive_weight': 0.0, 'data.num_frames': 5}
  )
  method = methods.build(config, 1)
  assert method.sampler.banks is None and method.sampler.num_classes == 5
  (extra,) = method.extras()
  assert extra.name == 'sdp' and set(extra.keys) == {'sdp_perm', 'sdp_label'}
  from jaxvssl.tf_setup import import_tensorflow  # pylint: disable=g-import-not-at-top

  tf = import_tensorflow()
  n = 6000
  ds = tf.data.Dataset.range(n).map(lambda i: extra.fn({}, tf.stack([tf.constant(1, tf.int64), i])))
  out = next(ds.batch(n).as_numpy_iterator())
  np.testing.assert_array_equal(
    out['sdp_label'],
    permutations.distance_to_class(permutations.batch_levenshtein(out['sdp_perm'], np.arange(5))),
  )
  # (1 + 1/2 + 1/6 + 1/24 + 1/120) / 5 = 0.3433 of the draws keep the clip as it is.
  exact = permutations.subset_shuffle_identity_probability(5)
  assert abs(exact - 0.34333) < 1e-4
  assert abs(np.mean(out['sdp_label'] == 0) - exact) < 0.03


def test_bn_groups_make_shuffle_bn_act_on_one_device(frames_run):
  """cacl.bn_groups=2: G's BatchNorm statistics over two halves of the batch; shuffle-BN then
  permutes the key batch across the halves and restores the order of the keys."""
  over = {'cacl.sdp_weight': 0.0, 'cacl.bn_groups': 2}
  config, method, batch, params, state = _setup(frames_run[0], **over)
  _, unshuffled, _, _, _ = _setup(frames_run[0], **over, **{'cacl.shuffle_bn': False})
  # A step key whose shuffle mixes the two groups (a third of the permutations of 4 keep them).
  for seed in range(2, 50):
    perm = np.asarray(jax.random.permutation(jax.random.split(jax.random.PRNGKey(seed), 3)[1], 4))
    if sorted(perm[:2]) not in ([0, 1], [2, 3]):
      break
  _, (_, shuffled_state) = _loss(method, params, state, batch, rng=seed)
  _, (_, plain_state) = _loss(unshuffled, params, state, batch, rng=seed)
  gk, _, stats = _hand_keys(method, state, batch, batch['sdp_perm'], order=perm)
  np.testing.assert_allclose(shuffled_state['queue'].keys[:4], gk, atol=1e-5)  # un-shuffled
  jax.tree_util.tree_map(
    functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
    shuffled_state['key_batch_stats'],
    stats,
  )
  # The grouping changed what the keys were normalised with: other keys, other statistics.
  gk_plain, _, stats_plain = _hand_keys(method, state, batch, batch['sdp_perm'])
  np.testing.assert_allclose(plain_state['queue'].keys[:4], gk_plain, atol=1e-5)
  assert not np.allclose(gk, gk_plain, atol=1e-4)
  var = lambda s: np.concatenate(
    [
      np.ravel(v)
      for p, v in jax.tree_util.tree_flatten_with_path(s)[0]
      if 'var' in jax.tree_util.keystr(p)
    ]
  )
  assert not np.allclose(var(stats), var(stats_plain), rtol=1e-4)
  # Without groups (bn_mode='global', bn_groups=0) shuffle-BN stays off: shuffle_bn changes nothing.
  _, g, _, _, _ = _setup(frames_run[0], **{'cacl.sdp_weight': 0.0})
  _, g_off, _, _, _ = _setup(frames_run[0], **{'cacl.sdp_weight': 0.0, 'cacl.shuffle_bn': False})
  assert float(_loss(g, params, state, batch, rng=seed)[0]) == float(
    _loss(g_off, params, state, batch, rng=seed)[0]
  )


def test_lr_multiplier_labels_name_t_by_its_param_subtrees(frames_run):
  _, method, _, params, _ = _setup(frames_run[0])
  assert set(cacl_lib.TRANSFORMER_PARAMS) <= set(params)
  multipliers = {name: 0.01 for name in cacl_lib.TRANSFORMER_PARAMS}
  labels = optim.lr_multiplier_labels(multipliers)(params)
  for name, tree in labels.items():
    want = name if name in multipliers else optim.DEFAULT_LABEL
    assert set(jax.tree_util.tree_leaves(tree)) == {want}, name
  # From the command line, on the real config.
  config = config_lib.load_config(
    'configs/cacl.py:sdp_vmoco_t.tiny',
    [f'optim.lr_multipliers.{name}=0.01' for name in cacl_lib.TRANSFORMER_PARAMS],
  )
  assert dict(config.optim.lr_multipliers) == multipliers


@pytest.mark.parametrize(
  'overrides, key',
  [
    (
      {'cacl.transformer_negatives': True, 'cacl.positive_pairs': ('gq_gk',)},
      'transformer_negatives',
    ),
    ({'cacl.transformer_negatives_weight': 0.0}, 'transformer_negatives_weight'),
    ({'cacl.transformer_momentum': 1.0}, 'transformer_momentum'),
    ({'cacl.transformer_momentum': 0.5, 'cacl.positive_pairs': ('gq_gk',)}, 'transformer_momentum'),
    ({'cacl.tq_tk_collapse_threshold': 1.5}, 'tq_tk_collapse_threshold'),
    (
      {'cacl.tq_tk_collapse_threshold': 0.9, 'cacl.contrastive_weight': 0.0},
      'tq_tk_collapse_threshold',
    ),
    ({'cacl.key_shuffle': 'own'}, 'key_shuffle'),
    ({'cacl.key_shuffle': 'independent', 'cacl.contrastive_weight': 0.0}, 'key_shuffle'),
    ({'cacl.key_order': 'code'}, 'key_order'),
    (
      {
        'cacl.key_order': 'released',
        'cacl.positive_pairs': ('gq_gk',),
        'cacl.contrast_input': 'clip',
      },
      'key_order',
    ),
    ({'cacl.sdp_sampler': 'uniform'}, 'sdp_sampler'),
    ({'cacl.bn_groups': 3}, 'bn_groups'),
    ({'cacl.bn_groups': -1}, 'bn_groups'),
    ({'cacl.transformer_pool': 'max'}, 'transformer_pool'),
    ({'cacl.transformer_pool': 'mean', 'cacl.positive_pairs': ('gq_gk',)}, 'transformer_pool'),
  ],
)
def test_ablation_options_are_validated_naming_the_key(frames_run, overrides, key):
  with pytest.raises(config_lib.ConfigError, match=rf'config\.cacl\.{key}='):
    cacl_config(frames_run[0], **overrides)


def test_paper_sizes_take_the_papers_plain_random_crop():
  """128 x 171 frames (short side 128), a plain random 112 x 112 crop; the tiny scale keeps its
  random resized crop."""
  for size in ('c3d', 'r3d18'):
    data = config_lib.load_config(f'configs/cacl.py:sdp_vmoco_t.{size}').data
    assert (data.crop, data.resize_short_side, data.crop_size) == ('random', 128, 112), size
  assert config_lib.load_config('configs/cacl.py:sdp.tiny').data.crop == 'random_resized'


def test_residual_g_with_rgb_t_is_supported(frames_run):
  """model.input_mode='residual' (the tiny scale): G sees frame differences of x and of x~
  (taken after the permutation), T's frozen encoder sees the RGB frames."""
  _, method, batch, params, state = _setup(frames_run[0], **{'model.input_mode': 'residual'})
  loss, (metrics, _) = _loss(method, params, state, batch)
  assert np.isfinite(float(loss)) and 'similarity/tq_tk' in metrics
  tokens = method.tokens(state['frame_encoder'], batch['query'], batch['sdp_perm'])
  assert tokens.shape[1] == 2 * batch['query'].shape[1]  # T: every RGB frame, not F - 1 differences

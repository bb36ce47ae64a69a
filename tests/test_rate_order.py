"""rate_order: views and segment labels through the pipeline, the order / rate / contrast losses
against NumPy (cosine and shuffle similarity, regression and classification), the synthetic key,
the generator from a view_synthesis run, configs, training (1 vs 8 devices, resume) and the
paper-size smoke test."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import checkpointing, config as config_lib, errors, methods, optim, runs
from jaxvssl import state as state_lib
from jaxvssl.inputs import segments
from jaxvssl.methods import rate_order as rate_order_lib
from tests import helpers

# configs/rate_order.py:tiny shrunk to seconds per step: 6 frames (3 segments of >= 2), 16 px.
SHRINK = (
  'data.num_frames=6',
  'data.crop_size=16',
  'model.width_multiplier=0.0625',
  'batch_size=4',
  'num_steps=2',
  'log_every_steps=1',
  'checkpoint_every_steps=1',
  'async_checkpointing=false',
  'progress_bar=false',
  'optim.warmup_steps=1',
  'rate_order.order_hidden_dim=8',
  'rate_order.head_hidden_dim=16',
  'rate_order.embed_dim=12',
  'rate_order.queue_size=16',
  'rate_order.momentum=0.9',
  'rate_order.generator_channels=(4,8)',
  'rate_order.latent_dim=2',
)
VS_SHRINK = (
  'data.num_frames=6',
  'data.crop_size=16',
  'model.width_multiplier=0.0625',
  'batch_size=4',
  'view_synthesis.generator_channels=(4,8)',
  'view_synthesis.latent_dim=2',
  'view_synthesis.flow_channels=(4,8,8)',
)
VIDEO_LENGTH = 48  # synthetic_motion's


def ro_config(vs_dir='', *overrides):
  return config_lib.load_config(
    'configs/rate_order.py:tiny',
    SHRINK + (f'rate_order.view_synthesis_workdir={vs_dir}',) + tuple(overrides),
  )


def save_vs_run(workdir, *overrides):
  """A view_synthesis run directory (config.json + one checkpoint at init, no train step)."""
  config = config_lib.load_config('configs/view_synthesis.py:tiny', VS_SHRINK + tuple(overrides))
  config_lib.save_config(config, str(workdir))
  method = methods.build(config, 1)
  tx = optim.make_optimizer(config)
  ts = jax.jit(functools.partial(state_lib.init_train_state, method, tx, seed=3))(
    method.example_batch(2)
  )
  manager = checkpointing.make_manager(str(workdir), 1, 1, async_save=False)
  checkpointing.save(manager, 1, ts, force=True)
  manager.wait_until_finished()
  return jax.device_get(ts.params['generator'])


@pytest.fixture(scope='module')
def vs_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('vs_run')
  return workdir, save_vs_run(workdir)


def segment_batches(config, method, start_step=0, seed=0, video_length=VIDEO_LENGTH):
  """helpers.fake_batches with true segment labels (order classes, rates) of the sampler."""
  c = config.rate_order
  for step, batch in enumerate(helpers.fake_batches(config, method, start_step, seed), start_step):
    rng = np.random.default_rng([seed, 11, step])
    samples = [
      segments.sample_segments(
        rng,
        video_length,
        config.data.num_frames,
        c.num_segments,
        (c.rate_min, c.rate_max),
        c.min_segment_length,
        length_multiple=c.segment_length_multiple,
      )
      for _ in range(config.batch_size)
    ]
    batch['segments_order_class'] = np.array([s.order_class for s in samples], np.int32)
    batch['segments_rates'] = np.stack([s.rates for s in samples]).astype(np.int32)
    yield batch


def setup(config, vs_dir=None):
  method = methods.build(config, 1)
  batch = jax.tree_util.tree_map(jnp.asarray, next(segment_batches(config, method, seed=5)))
  params, state = method.init(jax.random.PRNGKey(0), batch)
  if vs_dir is not None:
    params, state = method.load_pretrained(params, state, runs.load_run)
  if 'key_params' in state:
    # Momentum weights unlike the query's, so that mix-ups show.
    state['key_params'] = jax.tree_util.tree_map(lambda p: p * 1.1 + 0.01, state['key_params'])
  return method, params, state, batch


def _unit(x):
  """L2-normalised rows; a zero row stays zero (as objectives.l2_normalize)."""
  x = np.asarray(x, np.float64)
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  return x / np.where(norm > 0, norm, 1.0)


def _np_shuffle_distance(x, y, k, squared=False):
  """Algorithm 1, literally (greedy minimum matching of the k x k part distances)."""
  xs, ys = np.split(np.asarray(x, np.float64), k), np.split(np.asarray(y, np.float64), k)
  d = np.array([[np.linalg.norm(a - b) for b in ys] for a in xs])
  rows, cols, total = set(), set(), 0.0
  for _ in range(k):
    m, n = min(
      ((m, n) for m in range(k) for n in range(k) if m not in rows and n not in cols),
      key=lambda mn: d[mn],
    )
    total += d[m, n] ** 2 if squared else d[m, n]
    rows.add(m)
    cols.add(n)
  return total


def _np_log_softmax(logits):
  logits = np.asarray(logits, np.float64)
  m = logits.max(-1, keepdims=True)
  return logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))


def _outputs(method, params, state, x):
  (order, rate, q), _ = method.network().apply(
    {'params': params, 'batch_stats': state['batch_stats']}, x, train=True, mutable=['batch_stats']
  )
  return order, rate, q


def _keys(method, state, x):
  k, _ = method.network().apply(
    {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
    x,
    train=True,
    mutable=['batch_stats'],
    method=rate_order_lib.RateOrderNet.embed,
  )
  return _unit(k)


# --- inputs -----------------------------------------------------------------------------------


def test_views_and_extras_follow_the_enabled_parts(vs_run):
  method = methods.build(ro_config(vs_run[0]), 1)
  assert [v.name for v in method.views()] == ['query', 'key']
  assert all(v.sampler == 'extra' for v in method.views())
  assert [e.name for e in method.extras()] == ['segments', 'key_segments']
  assert method.pretrained_runs() == {'rate_order.view_synthesis_workdir': str(vs_run[0])}
  only_order = methods.build(
    ro_config('', 'rate_order.contrastive_weight=0', 'rate_order.rate_weight=0'), 1
  )
  assert [v.name for v in only_order.views()] == ['query']
  assert only_order.pretrained_runs() == {}
  # Without view synthesis no stage run is needed.
  no_vs = methods.build(ro_config('', 'rate_order.synthetic_key_prob=0'), 1)
  assert no_vs.pretrained_runs() == {}


def _video_source(num_videos=6, length=40, size=20):
  """Skip-decoded TFDS-format videos whose frame t is a flat image of value 5 * t."""
  from jaxvssl.tf_setup import import_tensorflow  # pylint: disable=g-import-not-at-top

  tf = import_tensorflow()
  frames = tf.stack(
    [
      tf.io.encode_jpeg(np.full([size, size, 3], 5 * t, np.uint8), quality=100)
      for t in range(length)
    ]
  )
  return tf.data.Dataset.from_tensor_slices(
    {
      'video': tf.stack([frames] * num_videos),
      'label': tf.range(num_videos, dtype=tf.int64) % 2,
      'video_id': tf.constant([f'v{i}' for i in range(num_videos)]),
      'num_frames': tf.fill([num_videos], length),
      'fps': tf.fill([num_videos], 8.0),
      'motion_scores': tf.zeros([num_videos, 2]),
    }
  )


def test_pipeline_clips_are_the_labelled_segments():
  """The query's frames (read back from their pixel values) are the shuffled multi-rate segments
  its labels describe; the key clip is another layout of the same video."""
  config = ro_config(
    '',
    'rate_order.synthetic_key_prob=0',
    'data.color_jitter_prob=0.0',
    'data.grayscale_prob=0.0',
    'data.mean=(0.0,0.0,0.0)',
    'data.std=(1.0,1.0,1.0)',
    'data.num_parallel_calls=1',
    'data.shuffle_buffer=8',
    'batch_size=6',
    'rate_order.queue_size=12',
  )
  method = methods.build(config, 1)
  ds = method.train_dataset(
    global_batch_size=6, seed=0, process_index=0, process_count=1, start_step=0,
    source=_video_source(),
  )  # fmt: skip
  frame_id = lambda clips: np.round(clips.mean(axis=(2, 3, 4)) * 255 / 5).astype(int)
  classes, all_rates, differ = set(), [], 0
  for batch in ds.take(3).as_numpy_iterator():
    ids = frame_id(batch['query'])
    np.testing.assert_array_equal(ids, batch['segments_indices'])
    np.testing.assert_array_equal(frame_id(batch['key']), batch['key_segments_indices'])
    differ += int(np.any(batch['segments_indices'] != batch['key_segments_indices']))
    for row, cls, rates, lengths in zip(
      ids, batch['segments_order_class'], batch['segments_rates'], batch['segments_lengths']
    ):
      assert lengths.sum() == 6 and lengths.min() >= 2
      bounds = np.concatenate([[0], np.cumsum(lengths)])
      parts = [row[bounds[j] : bounds[j + 1]] for j in range(3)]
      for part, rate in zip(parts, rates):
        np.testing.assert_array_equal(np.diff(part), rate)  # each segment at its own rate
      # Put the parts back in timeline order with the class: consecutive on the timeline.
      perm = segments.class_to_permutation(int(cls), 3)
      timeline = [parts[j] for j in np.argsort(perm)]
      rates_timeline = [rates[j] for j in np.argsort(perm)]
      for a, b, r in zip(timeline, timeline[1:], rates_timeline):
        assert b[0] == a[-1] + r
      classes.add(int(cls))
      all_rates.extend(rates)
  assert differ > 0
  assert len(classes) >= 4 and min(all_rates) == 1 and max(all_rates) >= 6


# --- losses against NumPy --------------------------------------------------------------------


@pytest.mark.parametrize(
  'similarity, shuffle_logit', [('shuffle', 'distance'), ('shuffle', 'squared'), ('cosine', '')]
)
def test_total_loss_matches_numpy(similarity, shuffle_logit):
  """Order CE + 0.3 rate MSE + InfoNCE with the similarity, the key = the other clip."""
  overrides = ['rate_order.synthetic_key_prob=0', f'rate_order.similarity={similarity}']
  if shuffle_logit:
    overrides.append(f'rate_order.shuffle_logit={shuffle_logit}')
  config = ro_config('', *overrides)
  method, params, state, batch = setup(config)
  loss, (metrics, new_state) = jax.jit(method.loss_fn)(
    params, state, batch, jax.random.PRNGKey(3), 0
  )
  c = config.rate_order
  order, rate, q = (
    np.asarray(a, np.float64) for a in _outputs(method, params, state, batch['query'])
  )
  labels = np.asarray(batch['segments_order_class'])
  rates = np.asarray(batch['segments_rates'], np.float64)
  assert order.shape == (4, math.factorial(3)) and rate.shape == (4, 3)
  order_loss = -_np_log_softmax(order)[np.arange(4), labels].mean()
  rate_loss = np.mean((rate - rates) ** 2)
  qn, k = _unit(q), _keys(method, state, batch['key'])
  bank = np.asarray(state['queue'].keys, np.float64)
  if similarity == 'cosine':
    pos, neg = np.sum(qn * k, -1), qn @ bank.T
  else:
    squared = shuffle_logit == 'squared'
    scale = 0.5 if squared else 1.0
    pos = np.array([-scale * _np_shuffle_distance(a, b, 3, squared) for a, b in zip(qn, k)])
    neg = np.array([[-scale * _np_shuffle_distance(a, n, 3, squared) for n in bank] for a in qn])
  logits = np.concatenate([pos[:, None], neg], -1) / c.temperature
  contrast = -_np_log_softmax(logits)[:, 0].mean()
  np.testing.assert_allclose(float(metrics['order_loss']), order_loss, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['rate_loss']), rate_loss, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['rate_error']), np.mean(np.abs(rate - rates)), rtol=1e-5)
  np.testing.assert_allclose(
    float(metrics['order_accuracy']), np.mean(order.argmax(-1) == labels), rtol=1e-6
  )
  np.testing.assert_allclose(float(metrics['contrastive_loss']), contrast, rtol=2e-4, atol=1e-5)
  np.testing.assert_allclose(
    float(loss), 1.0 * order_loss + 0.3 * rate_loss + 1.0 * contrast, rtol=2e-4
  )
  # The keys are pushed into the queue.
  np.testing.assert_allclose(np.asarray(new_state['queue'].keys[:4]), k, atol=1e-5)
  np.testing.assert_array_equal(new_state['queue'].keys[4:], bank[4:])
  assert int(new_state['queue'].pointer) == 4


def test_shuffle_similarity_ignores_the_order_of_the_parts():
  """A key whose embedding parts are a permutation of the query's scores as the query itself:
  the alignment that Algorithm 1 exists for (cosine similarity does not)."""
  config = ro_config('', 'rate_order.synthetic_key_prob=0')
  method = methods.build(config, 1)
  q = jnp.asarray(np.random.default_rng(0).normal(size=(2, 12)), jnp.float32)
  moved = jnp.concatenate(jnp.split(q, 3, axis=-1)[::-1], axis=-1)
  bank = jnp.asarray(_unit(np.random.default_rng(1).normal(size=(5, 12))), jnp.float32)
  pos, _ = method.contrast_logits(q, moved, bank)
  np.testing.assert_allclose(pos, 0.0, atol=1e-4)
  cosine = methods.build(
    ro_config('', 'rate_order.synthetic_key_prob=0', 'rate_order.similarity=cosine'), 1
  )
  pos_cos, _ = cosine.contrast_logits(q, moved, bank)
  assert np.all(np.asarray(pos_cos) < 0.99 / config.rate_order.temperature)


def test_rate_classification_variant(vs_run):
  config = ro_config(
    '', 'rate_order.contrastive_weight=0', 'rate_order.rate_objective=classification'
  )
  method, params, state, batch = setup(config)
  assert set(params) == {'backbone', 'order_head', 'rate_head'}
  assert set(state) == {'batch_stats'}  # no key encoder, queue or generator without the contrast
  loss, (metrics, _) = jax.jit(method.loss_fn)(params, state, batch, jax.random.PRNGKey(3), 0)
  order, rate, q = _outputs(method, params, state, batch['query'])
  assert q is None and rate.shape == (4, 3, 8)  # 8 rates in [1, 8]
  rates = np.asarray(batch['segments_rates'])
  log_p = _np_log_softmax(rate)
  rate_loss = -np.mean(np.take_along_axis(log_p, (rates - 1)[..., None], -1))
  predicted = np.asarray(rate).argmax(-1) + 1
  np.testing.assert_allclose(float(metrics['rate_loss']), rate_loss, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['rate_accuracy']), np.mean(predicted == rates))
  np.testing.assert_allclose(float(metrics['rate_error']), np.mean(np.abs(predicted - rates)))
  np.testing.assert_allclose(float(loss), float(metrics['order_loss']) + 0.3 * rate_loss, rtol=1e-5)
  assert 'contrastive_loss' not in metrics


def test_synthetic_key_is_the_generator_view_of_the_query(vs_run):
  """synthetic_key_prob=1: every key is G(query) with the loaded generator; 0.5: a random mix."""
  vs_dir, generator = vs_run
  config = ro_config(vs_dir, 'rate_order.synthetic_key_prob=1.0', 'rate_order.similarity=cosine')
  method, params, state, batch = setup(config, vs_dir)
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, jax.device_get(state['generator']['params']), generator
  )
  rng = jax.random.PRNGKey(9)
  _, (metrics, new_state) = jax.jit(method.loss_fn)(params, state, batch, rng, 0)
  assert float(metrics['synthetic_key_fraction']) == 1.0
  _, choice_rng, latent_rng = jax.random.split(rng, 3)
  # 'subset' with p = 1: G on the batch in the order of the draw, each view back in its place.
  order = np.asarray(jax.random.permutation(choice_rng, 4))
  drawn = method.synthetic_views(state['generator'], batch['query'][order], latent_rng)
  synthetic = np.empty_like(np.asarray(drawn))
  synthetic[order] = drawn
  assert synthetic.shape == batch['query'].shape
  assert not np.allclose(synthetic, batch['query'])
  np.testing.assert_allclose(
    np.asarray(new_state['queue'].keys[:4]), _keys(method, state, synthetic), atol=1e-5
  )


@pytest.mark.parametrize('draw', ['subset', 'bernoulli'])
def test_synthetic_keys_mix(vs_run, draw):
  """p = 0.5: 'subset' makes exactly half of the keys G's views, 'bernoulli' about half; the
  chosen keys are G(query) (without the latent noise, so independent of the draw order) and the
  others the other clip."""
  vs_dir, _ = vs_run
  config = ro_config(
    vs_dir,
    'rate_order.similarity=cosine',
    'rate_order.synthetic_sample=False',
    f'rate_order.synthetic_key_draw={draw}',
  )
  method, _, state, batch = setup(config, vs_dir)
  assert method.settings.synthetic_key_prob == 0.5
  query, other = _tile(batch, 4)['query'], _tile(batch, 4)['key'] + 1.0  # 16 clips, key != query
  views = np.asarray(method.synthetic_views(state['generator'], query, None))
  mix = jax.jit(method.mix_synthetic_keys)
  counts = []
  for s in range(4):
    choice_rng, latent_rng = jax.random.split(jax.random.PRNGKey(s))
    keys, use = jax.device_get(mix(state['generator'], query, other, choice_rng, latent_rng))
    assert use.shape == (16,) and use.dtype == bool
    np.testing.assert_allclose(keys[use], views[use], atol=1e-5)
    np.testing.assert_array_equal(keys[~use], np.asarray(other)[~use])
    counts.append(int(use.sum()))
  if draw == 'subset':
    assert counts == [8] * 4
  else:
    assert 0 < np.mean(counts) < 16 and len(set(counts)) > 1  # Binomial(16, 0.5) draws
  with pytest.raises(errors.ConfigError, match=r'rate_order\.synthetic_key_draw'):
    methods.build(ro_config(vs_dir, 'rate_order.synthetic_key_draw=half'), 1)


def _tile(batch, times):
  return jax.tree_util.tree_map(lambda a: jnp.concatenate([a] * times), batch)


def test_generator_run_errors_are_clear(vs_run, tmp_path):
  vs_dir, _ = vs_run
  with pytest.raises(errors.PretrainedWeightsError, match='no_such_run.*does not exist'):
    setup(ro_config(tmp_path / 'no_such_run'), tmp_path / 'no_such_run')
  with pytest.raises(errors.PretrainedWeightsError, match=r'architecture mismatch.*latent_dim'):
    setup(ro_config(vs_dir, 'rate_order.latent_dim=3'), vs_dir)
  with pytest.raises(errors.PretrainedWeightsError, match=r'data\.mean'):
    setup(ro_config(vs_dir, 'data.mean=(0.5,0.5,0.5)'), vs_dir)
  other = tmp_path / 'other_method'
  config = helpers.tiny_config('moco')
  config_lib.save_config(config, str(other))
  method = methods.build(config, 1)
  tx = optim.make_optimizer(config)
  ts = jax.jit(functools.partial(state_lib.init_train_state, method, tx, seed=0))(
    method.example_batch(2)
  )
  manager = checkpointing.make_manager(str(other), 1, 1, async_save=False)
  checkpointing.save(manager, 1, ts, force=True)
  manager.wait_until_finished()
  with pytest.raises(errors.PretrainedWeightsError, match="'moco' run"):
    setup(ro_config(other), other)


# --- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  'overrides, key',
  [
    (('rate_order.num_segments=6',), r'rate_order\.num_segments'),
    (('rate_order.num_segments=4',), r'rate_order\.min_segment_length.*do not fit'),
    (('rate_order.min_segment_length=1',), r'rate_order\.min_segment_length'),
    (('rate_order.rate_min=3', 'rate_order.rate_max=2'), r'rate_order\.rate_min'),
    (('rate_order.rate_draw=uniform',), r'rate_order\.rate_draw'),
    (('rate_order.embed_dim=8',), r'rate_order\.embed_dim.*3 parts'),
    (('rate_order.similarity=dot',), r'rate_order\.similarity'),
    (('rate_order.rate_objective=ordinal',), r'rate_order\.rate_objective'),
    (('rate_order.queue_size=6',), r'rate_order\.queue_size'),
    (('rate_order.synthetic_key_prob=1.5',), r'rate_order\.synthetic_key_prob'),
    (('rate_order.segment_length_multiple=4',), r'rate_order\.segment_length_multiple'),
    (('model.input_mode=residual',), r"input_mode='residual'.*seams"),
    (('rate_order.segment_length_multiple=1',), r'input_group_size=2.*straddle'),
    (
      ('rate_order.order_weight=0', 'rate_order.rate_weight=0', 'rate_order.contrastive_weight=0'),
      r'rate_order\.order_weight',
    ),
  ],
)
def test_config_validation_names_the_key(overrides, key):
  with pytest.raises(config_lib.ConfigError, match=key):
    ro_config('runs/x', *overrides)


def test_config_validation_of_the_stage_and_the_embedding():
  with pytest.raises(config_lib.ConfigError, match=r'rate_order\.view_synthesis_workdir'):
    ro_config('')
  ro_config('', 'rate_order.synthetic_key_prob=0')  # no stage needed
  ro_config('', 'rate_order.contrastive_weight=0')
  # Cosine similarity does not split the embedding; shuffle_parts overrides k.
  ro_config(
    '', 'rate_order.synthetic_key_prob=0', 'rate_order.embed_dim=8', 'rate_order.similarity=cosine'
  )
  ro_config(
    '', 'rate_order.synthetic_key_prob=0', 'rate_order.embed_dim=8', 'rate_order.shuffle_parts=4'
  )


def test_variants():
  tiny = config_lib.load_config('configs/rate_order.py:tiny')
  r = tiny.rate_order
  assert (tiny.data.num_frames, r.num_segments, r.min_segment_length) == (8, 3, 2)
  assert (r.rate_min, r.rate_max, r.rate_draw) == (1, 8, 'sequential')
  assert (r.order_weight, r.rate_weight, r.contrastive_weight) == (1.0, 0.3, 1.0)
  assert all(r.embed_dim % n == 0 for n in (2, 3, 4, 5))
  assert (tiny.model.input_mode, tiny.model.input_group_size) == ('group_residual', 2)
  assert (tiny.optim.name, tiny.optim.base_learning_rate, tiny.num_steps) == ('adam', 1e-3, 6000)
  assert r.synthetic_key_draw == 'subset'
  assert r.segment_length_multiple == 2 and tiny.optim.schedule == 'constant'
  assert r.view_synthesis_workdir == 'runs/view_synthesis/tiny'
  for backbone in ('r2plus1d18', 'c3d', 'r3d18'):
    paper = config_lib.load_config(f'configs/rate_order.py:{backbone}')
    p = paper.rate_order
    assert paper.model.backbone == backbone and paper.data.name == 'ucf101/split1'
    assert (paper.data.num_frames, paper.data.crop_size, paper.batch_size) == (16, 112, 16)
    assert (p.num_segments, p.min_segment_length, p.rate_min, p.rate_max) == (3, 3, 1, 8)
    assert all(p.embed_dim % n == 0 for n in (2, 3, 4, 5)) and p.similarity == 'shuffle'
    assert p.synthetic_key_draw == 'subset'
    o = paper.optim
    assert (o.name, o.base_learning_rate, o.momentum, o.weight_decay) == ('sgd', 1e-3, 0.9, 5e-4)
    schedule = optim.make_schedule(paper)
    boundary = int(paper.num_steps * 2 / 3)
    np.testing.assert_allclose(float(schedule(boundary - 1)), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(boundary + 1)), 1e-4, rtol=1e-6)
    assert paper.num_steps == 300 * (9_537 // 16)


def test_table_ablation_files_define_the_papers_rows():
  from jaxvssl import ablate  # pylint: disable=g-import-not-at-top

  load = lambda name: ablate.load_ablation(f'configs/ablations/{name}.py')
  table6 = load('rate_order_table6')
  assert [r.name for r in table6.rows] == [
    'order',
    'order_rate',
    'contrast',
    'shuffle',
    'synthesis',
  ]
  assert [s.name for s in table6.stages] == ['view_synthesis'] and table6.random_init
  table3 = load('rate_order_table3')
  assert [r.name for r in table3.rows] == ['n2', 'n3', 'n4', 'n5']
  table5 = load('rate_order_table5')
  assert [r.name for r in table5.rows] == ['classification', 'regression']
  configs = {}
  for table in (table6, table3, table5):
    for row in table.rows:
      overrides = tuple(o.replace('{stage:view_synthesis}', 'runs/vs') for o in row.overrides)
      configs[table.name, row.name] = config_lib.load_config(
        row.config, table.overrides + overrides
      )
  r = {k: c.rate_order for k, c in configs.items()}
  t6 = lambda row: r['rate_order_table6', row]
  assert (t6('order').rate_weight, t6('order').contrastive_weight) == (0.0, 0.0)
  assert t6('order_rate').rate_weight == 0.3 and t6('order_rate').contrastive_weight == 0.0
  assert (t6('contrast').similarity, t6('contrast').synthetic_key_prob) == ('cosine', 0.0)
  assert (t6('shuffle').similarity, t6('shuffle').synthetic_key_prob) == ('shuffle', 0.0)
  assert (t6('synthesis').similarity, t6('synthesis').synthetic_key_prob) == (
    'shuffle',
    0.5,
  )
  assert [r['rate_order_table3', f'n{n}'].num_segments for n in (2, 3, 4, 5)] == [2, 3, 4, 5]
  assert {configs['rate_order_table3', f'n{n}'].data.num_frames for n in (2, 3, 4, 5)} == {10}
  assert [
    r['rate_order_table5', row].rate_objective for row in ('classification', 'regression')
  ] == [
    'classification',
    'regression',
  ]


# --- training ---------------------------------------------------------------------------------


def _run(config, workdir, devices, stop_after=None):
  return helpers.run_training(
    config, workdir, devices, stop_after=stop_after, batches=segment_batches
  )


def test_tiny_trains_with_finite_losses(vs_run, tmp_path):
  config = ro_config(vs_run[0])
  ts = _run(config, tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in (
      'loss',
      'order_loss',
      'order_accuracy',
      'rate_loss',
      'rate_error',
      'contrastive_loss',
    ):
      assert np.isfinite(record[key]), key
  # The generator is frozen: the stage's weights after the steps, and never in params.
  assert 'generator' not in ts.params
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, jax.device_get(ts.state['generator']['params']), vs_run[1]
  )


@pytest.mark.slow
def test_8_devices_equal_1_device_and_resume_is_exact(vs_run, tmp_path):
  """Slow: four train-loop runs (1 device, 8 devices, interrupted + resumed)."""
  config = ro_config(vs_run[0], 'batch_size=8', 'num_steps=3', 'optim.base_learning_rate=0.05')
  # Resume restores the momentum encoder and key BN statistics, the queue and its pointer, the
  # frozen generator, the rng and the step.
  keys = ('loss', 'order_loss', 'rate_loss', 'contrastive_loss', 'synthetic_key_fraction')
  one, _ = helpers.check_devices_and_resume(config, tmp_path, keys, batches=segment_batches)
  assert int(one.state['queue'].pointer) == 8 * 3 % 16


@pytest.mark.slow
def test_paper_size_two_steps_on_cpu(tmp_path):
  """2 steps of configs/rate_order.py:r2plus1d18 (16 x 112 x 112, n = 3) at batch 2 on CPU, with
  a generator of the paper-size architecture (a view_synthesis run saved at init)."""
  vs_dir = tmp_path / 'vs'
  vs = config_lib.load_config('configs/view_synthesis.py:paper', ('batch_size=2',))
  config_lib.save_config(vs, str(vs_dir))
  method = methods.build(vs, 1)
  ts = jax.jit(
    functools.partial(state_lib.init_train_state, method, optim.make_optimizer(vs), seed=0)
  )(method.example_batch(2))
  manager = checkpointing.make_manager(str(vs_dir), 1, 1, async_save=False)
  checkpointing.save(manager, 1, ts, force=True)
  manager.wait_until_finished()
  config = config_lib.load_config(
    'configs/rate_order.py:r2plus1d18',
    (
      'batch_size=2',
      'num_steps=2',
      'rate_order.queue_size=64',
      f'rate_order.view_synthesis_workdir={vs_dir}',
      'log_every_steps=1',
      'checkpoint_every_steps=2',
      'async_checkpointing=false',
      'progress_bar=false',
    ),
  )
  run_dir = tmp_path / 'run'
  # UCF101 videos are ~180 frames: labels drawn as for a 175-frame video.
  helpers.run_training(
    config, run_dir, jax.devices()[:1], batches=segment_batches, video_length=175
  )
  records = helpers.logged_steps(run_dir)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in ('loss', 'order_loss', 'rate_loss', 'contrastive_loss'):
      assert np.isfinite(record[key]), key

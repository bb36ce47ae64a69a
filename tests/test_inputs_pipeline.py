"""Tests of the tf.data video pipeline (jaxvssl.inputs.pipeline) on in-memory videos.

Every test video has 32x40 JPEG frames whose content tells where a pixel came from:
  R = column ramp, G = row ramp  (identical in every frame: reveals the crop box and flip),
  B = 5 * frame index            (constant per frame: reveals which frame was sampled).
Photometric augmentation and normalisation are switched off where pixels are read back.
"""

import itertools
import re

import ml_collections
import numpy as np
import pytest

from jaxvssl.errors import ConfigError
from jaxvssl.inputs import data_config, input_checks, ops, pipeline, reading, timing
from jaxvssl.inputs import views as V
from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()

H, W = 32, 40
LENGTHS = (24, 30, 36, 42, 48, 27, 33)
FPS = 8.0


def _frame(t):
  f = np.zeros([H, W, 3], np.uint8)
  f[..., 0] = np.round(np.arange(W) * 255 / (W - 1))[None]
  f[..., 1] = np.round(np.arange(H) * 255 / (H - 1))[:, None]
  f[..., 2] = 5 * t
  return tf.io.encode_jpeg(f, quality=100, chroma_downsampling=False)


_FRAMES = {}


def _example(v, length, scores=None):
  if length not in _FRAMES:
    _FRAMES[length] = tf.stack([_frame(t) for t in range(length)])
  windows = -(-length // int(FPS))
  if scores is None:
    scores = np.random.default_rng(v).uniform(size=windows).astype(np.float32)
  return {
    'video': _FRAMES[length],
    'label': tf.constant(v % 3, tf.int64),
    'video_id': tf.constant(f'vid{v}'),
    'num_frames': tf.constant(length, tf.int32),
    'fps': tf.constant(FPS),
    'motion_scores': tf.constant(scores, tf.float32),
  }


def make_source(lengths=LENGTHS, scores=None):
  """A finite tf.data source in the skip-decoded TFDS format, one element per video."""
  ds = None
  for v, n in enumerate(lengths):
    one = tf.data.Dataset.from_tensors(_example(v, n, scores))
    ds = one if ds is None else ds.concatenate(one)
  return ds


def make_cfg(photometric=False, **overrides):
  c = data_config.default_data_config()
  c.crop_size, c.num_frames, c.stride = 16, 4, 2
  c.num_parallel_calls, c.prefetch, c.shuffle_buffer, c.frame_shuffle_buffer = 2, 1, 16, 64
  if not photometric:
    c.color_jitter_prob = c.grayscale_prob = c.blur_prob = 0.0
    c.mean, c.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
  for k, v in overrides.items():
    c[k] = v
  return c


def frame_ids(clips):
  """Frame index of every frame of `[..., T, S, S, 3]` clips, from the B channel."""
  return np.round(clips[..., 2].mean(axis=(-1, -2)) * 255 / 5).astype(int)


def take(ds, n):
  return list(itertools.islice(ds.as_numpy_iterator(), n))


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


# --- training ---------------------------------------------------------------------------------


def test_train_shapes_dtypes_and_extras():
  banks = np.array(
    [[[0, 1, 2, 3], [0, 1, 2, 3]], [[1, 0, 2, 3], [0, 2, 1, 3]], [[3, 2, 1, 0], [2, 3, 0, 1]]],
    np.int32,
  )
  views = (
    V.ViewSpec('query', 4, 2, temporal_group='clip', augment_group='q'),
    V.ViewSpec('key', 4, 2, temporal_group='clip', augment_group='k', crop_size=8),
    V.ViewSpec('seg', 6, sampler='extra', indices_key='ro_indices'),
  )
  extras = (
    V.permutation_bank_extra(banks, name='sdp'),
    V.segment_clip_extra(
      name='ro', clip_length=6, num_segments=2, min_segment_length=3, rate_range=(1, 2)
    ),
  )
  (batch,) = take(
    pipeline.make_train_dataset(
      make_cfg(), views, global_batch_size=4, seed=0, source=make_source(), extras=extras
    ),
    1,
  )
  assert batch['query'].shape == (4, 4, 16, 16, 3) and batch['query'].dtype == np.float32
  assert batch['key'].shape == (4, 4, 8, 8, 3)
  assert batch['seg'].shape == (4, 6, 16, 16, 3)
  assert batch['label'].dtype == np.int32 and batch['index'].dtype == np.int32
  np.testing.assert_array_equal(batch['label'], batch['index'] % 3)
  assert batch['sdp_perm'].shape == (4, 4) and batch['sdp_label'].shape == (4,)
  for perm, label in zip(batch['sdp_perm'], batch['sdp_label']):
    assert any((perm == row).all() for row in banks[label])
  # The 'extra' view decodes exactly the frames the extra chose.
  np.testing.assert_array_equal(frame_ids(batch['seg']), batch['ro_indices'])
  assert batch['ro_order_class'].shape == (4,) and batch['ro_rates'].shape == (4, 2)


def test_groups_share_start_and_augmentation_and_every_frame_shares_the_crop():
  views = (
    V.ViewSpec('a', 4, 2, temporal_group='w', augment_group='x'),
    V.ViewSpec('b', 4, 2, temporal_group='w', offset=8, augment_group='x'),
    V.ViewSpec('long', 4, 4, temporal_group='w', augment_group='y'),
    V.ViewSpec('other', 4, 2),
  )
  (batch,) = take(
    pipeline.make_train_dataset(
      make_cfg(), views, global_batch_size=7, seed=1, source=make_source()
    ),
    1,
  )
  ids = {k: frame_ids(batch[k]) for k in ('a', 'b', 'long', 'other')}
  np.testing.assert_array_equal(np.diff(ids['a'], axis=1), 2)
  np.testing.assert_array_equal(ids['b'], ids['a'] + 8)  # offset within the group
  np.testing.assert_array_equal(ids['long'][:, 0], ids['a'][:, 0])  # same window start
  np.testing.assert_array_equal(np.diff(ids['long'], axis=1), 4)
  assert (ids['other'][:, 0] != ids['a'][:, 0]).any()  # its own window
  rg = {k: batch[k][..., :2] for k in ids}
  for k, x in rg.items():  # the same crop and flip on every frame of a clip
    assert np.abs(x - x[:, :1]).max() < 0.03, k
  np.testing.assert_allclose(rg['a'], rg['b'], atol=0.03)  # one augment group
  diff = np.abs(rg['a'] - rg['long']).max(axis=(1, 2, 3, 4))
  assert (diff > 0.1).sum() >= 5  # independent draws
  # Flips happen, and are whole-clip: R decreases along x in flipped clips.
  slope = np.sign(rg['other'][:, 0, 0, -1, 0] - rg['other'][:, 0, 0, 0, 0])
  assert set(slope.tolist()) == {-1.0, 1.0}


def test_plain_random_crop_keeps_the_pixel_scale():
  """data.crop='random' (CACL's crop): a crop_size window of the frames, never resampled."""
  view = (V.ViewSpec('clip', 4, 2),)
  steps = {}
  for crop in ('random', 'random_resized'):
    (batch,) = take(
      pipeline.make_train_dataset(
        make_cfg(crop=crop, flip_prob=0.0),
        view,
        global_batch_size=7,
        seed=2,
        source=make_source(),
      ),
      1,
    )
    x = batch['clip']  # [B, T, 16, 16, 3]
    # R grows by 1/(W-1) per pixel column and G by 1/(H-1) per row in the stored frames.
    steps[crop] = (
      np.diff(x[..., 0], axis=-1).mean(axis=(1, 2, 3)) * (W - 1),
      np.diff(x[..., 1], axis=-2).mean(axis=(1, 2, 3)) * (H - 1),
    )
    if crop == 'random':
      starts = x[:, 0, 0, 0, 0] * (W - 1)
      assert len(set(np.round(starts).astype(int))) > 2  # random offsets
      assert starts.max() <= W - 16 + 0.5  # the window lies inside the frame
  np.testing.assert_allclose(steps['random'][0], 1.0, atol=0.05)
  np.testing.assert_allclose(steps['random'][1], 1.0, atol=0.05)
  assert (np.abs(steps['random_resized'][0] - 1.0) > 0.1).any()  # resized crops rescale


def _train(seed=3, start_step=0, process_index=0, process_count=1, batch=2, **cfg):
  views = (
    V.ViewSpec('query', 4, 2, temporal_group=0, augment_group=0),
    V.ViewSpec('key', 4, 2, augment_group=1),
  )
  return pipeline.make_train_dataset(
    make_cfg(photometric=True, **cfg),
    views,
    global_batch_size=batch,
    seed=seed,
    start_step=start_step,
    process_index=process_index,
    process_count=process_count,
    source=make_source(),
  )


def test_deterministic_and_resume_equals_uninterrupted_stream():
  # 7 videos, batch 2: epochs end mid-batch, so resuming at step 5 (example 10 = epoch 1,
  # position 3) crosses an epoch boundary.
  full = take(_train(), 7)
  # A second run, with other parallelism, gives the same stream.
  assert_batches_equal(take(_train(num_parallel_calls=1), 7), full)
  assert_batches_equal(take(_train(start_step=5), 2), full[5:])
  # Each epoch visits every video once, in a seed-dependent order.
  order = np.concatenate([b['index'] for b in full])
  assert sorted(order[:7]) == list(range(7)) and sorted(order[7:]) == list(range(7))
  assert (order[:7] != order[7:]).any()
  other = take(_train(seed=4), 2)
  assert any(not np.array_equal(a['query'], b['query']) for a, b in zip(full, other))


def test_train_sharding_disjoint_and_complete():
  seen = []
  for p in range(3):
    local_n = len(range(p, 7, 3))
    ds = pipeline.make_train_dataset(
      make_cfg(),
      (V.ViewSpec('clip', 2),),
      global_batch_size=3,
      seed=0,
      process_index=p,
      process_count=3,
      source=make_source(),
    )
    idx = np.concatenate([b['index'] for b in take(ds, local_n)])
    assert sorted(idx) == list(range(p, 7, 3))  # one epoch of its own shard
    seen.extend(idx)
  assert sorted(seen) == list(range(7))
  with pytest.raises(ValueError, match='divisible'):
    _train(process_count=3, batch=4)


@pytest.mark.parametrize('beta', [0.5, float('inf')])
def test_targeted_view_follows_motion_scores(beta):
  scores = np.array([0, 0, 0, 0, 6.0, 0], np.float32)  # window 4 = frames 32..39
  source = make_source(lengths=(48,) * 16, scores=scores)
  views = (V.ViewSpec('clip', 4, 1, sampler='targeted'),)
  batches = take(
    pipeline.make_train_dataset(
      make_cfg(targeted_beta=beta), views, global_batch_size=16, seed=0, source=source
    ),
    2,
  )
  centre_window = (np.concatenate([frame_ids(b['clip'])[:, 0] for b in batches]) + 2) // 8
  counts = np.bincount(centre_window, minlength=6)
  if beta == 0.5:  # p(window 4) = 1 - 5 e^-12: every clip is centred there
    assert counts[4] == 32
  else:  # uniform over windows
    assert (counts > 0).sum() >= 5 and counts.max() < 16


# --- evaluation -------------------------------------------------------------------------------


def _eval(**kw):
  args = dict(batch_size=3, num_clips=3, num_frames=4, stride=3, source=make_source())
  args.update(kw)
  return list(pipeline.make_eval_dataset(make_cfg(), **args).as_numpy_iterator())


def test_eval_clips_uniform_no_video_dropped_padding():
  batches = _eval()
  assert len(batches) == 3 and all(b['clips'].shape == (3, 3, 4, 16, 16, 3) for b in batches)
  valid = np.concatenate([b['valid'] for b in batches])
  np.testing.assert_array_equal(valid, [True] * 7 + [False] * 2)
  ids = np.concatenate([b['video_id'] for b in batches])[valid]
  assert [i.decode() for i in ids] == [f'vid{v}' for v in range(7)]
  labels = np.concatenate([b['label'] for b in batches])
  np.testing.assert_array_equal(labels, [v % 3 for v in range(7)] + [-1, -1])
  frames = frame_ids(np.concatenate([b['clips'] for b in batches]))[:7]  # [V, N, T]
  for v, n in enumerate(LENGTHS):
    span = ops.clip_span(4, 3)
    np.testing.assert_array_equal(frames[v, :, 0], np.round(np.linspace(0, n - span, 3)))
    np.testing.assert_array_equal(np.diff(frames[v], axis=-1), 3)
  assert_batches_equal(batches, _eval())  # deterministic


def test_eval_sharding_equal_batch_counts_disjoint_complete():
  seen = []
  for p in range(3):
    batches = _eval(batch_size=2, process_index=p, process_count=3)
    assert len(batches) == 2  # ceil(ceil(7 / 3) / 2) on every process
    for b in batches:
      seen.extend(i.decode() for i in b['video_id'][b['valid']])
  assert sorted(seen) == sorted(f'vid{v}' for v in range(7))


def test_eval_three_crop_and_shuffle_frames():
  plain = _eval(crop='three_crop')
  assert plain[0]['clips'].shape == (3, 9, 4, 16, 16, 3)
  clips = plain[0]['clips'][0]  # [9, T, S, S, 3], clip-major
  left_r = clips[0::3, 0, 0, 0, 0]
  right_r = clips[2::3, 0, 0, 0, 0]
  assert (right_r > left_r + 0.2).all()  # crops move along the long side
  np.testing.assert_array_equal(frame_ids(clips[0::3]), frame_ids(clips[1::3]))
  shuffled = _eval(crop='three_crop', shuffle_frames=True)
  assert_batches_equal(shuffled, _eval(crop='three_crop', shuffle_frames=True))
  for a, b in zip(plain, shuffled):
    ia, ib = frame_ids(a['clips']), frame_ids(b['clips'])
    np.testing.assert_array_equal(np.sort(ia, -1), np.sort(ib, -1))  # same frames
    valid = a['valid']
    assert (ia[valid] != ib[valid]).any(axis=-1).all()  # every clip permuted
    np.testing.assert_array_equal(ib[:, 0::3], ib[:, 1::3])  # crops share the order


# --- frames, helpers --------------------------------------------------------------------------


def test_frame_dataset_shapes_determinism_resume():
  def frames(start_step=0):
    return take(
      pipeline.make_frame_dataset(
        make_cfg(photometric=True),
        global_batch_size=4,
        seed=0,
        frame_step=10,
        start_step=start_step,
        source=make_source(),
      ),
      6 - start_step,
    )

  full = frames()
  b = full[0]
  assert b['query'].shape == (4, 16, 16, 3) and b['key'].shape == (4, 16, 16, 3)
  assert not np.allclose(b['query'], b['key'])
  fi = np.concatenate([x['frame_index'] for x in full])
  assert (fi % 10 == 0).all() and fi.max() <= max(LENGTHS) - 1
  # 7 videos give 3+3+4+5+5+3+4 = 27 frames per epoch; 6 batches of 4 = 24 frames.
  pairs = {(i, f) for x in full for i, f in zip(x['index'], x['frame_index'])}
  assert len(pairs) == 24
  assert_batches_equal(frames(start_step=4), full[4:])


def test_frame_dataset_difference_images():
  """difference_stride=2: frame t + 2 minus frame t through one augmentation. The test frames
  share their R, G gradients and differ in B by 5 per frame, so every difference image is
  (0, 0, 10 / 255) wherever the crop lands; resume sees the same stream."""

  def frames(start_step=0):
    return take(
      pipeline.make_frame_dataset(
        make_cfg(),
        global_batch_size=4,
        seed=0,
        frame_step=10,
        start_step=start_step,
        source=make_source(),
        difference_stride=2,
      ),
      4 - start_step,
    )

  full = frames()
  for b in full:
    for key in ('query', 'key'):
      assert b[key].shape == (4, 16, 16, 3)
      # Per image, JPEG noise averages < 0.005; crops one pixel apart would differ by
      # 1 / (W - 1) = 0.026 in R everywhere.
      assert (np.abs(b[key][..., :2]).mean(axis=(1, 2)) < 0.005).all()
      np.testing.assert_allclose(
        b[key][..., 2].mean(axis=(1, 2)), 10 / 255, atol=0.008
      )  # not 5 / 255
  fi = np.concatenate([x['frame_index'] for x in full])
  length = np.asarray(LENGTHS)[np.concatenate([x['index'] for x in full])]
  assert (fi + 2 <= length - 1).all()
  assert_batches_equal(frames(start_step=2), full[2:])
  with pytest.raises(ValueError, match='difference_stride=-1'):
    pipeline.make_frame_dataset(make_cfg(), global_batch_size=4, seed=0, difference_stride=-1)


def test_timed_iterator_records_waits():
  ticks = iter([0.0, 0.5, 1.0, 1.25, 2.0, 2.0])
  it = timing.TimedIterator(iter([1, 2, 3]), clock=lambda: next(ticks))
  assert [next(it), next(it)] == [1, 2]
  assert it.last_wait == 0.25 and it.total_wait == 0.75
  assert it.pop_wait() == (0.75, 2) and it.pop_wait() == (0.0, 0)
  assert next(it) == 3 and it.num_batches == 3


# --- check_data_config: one case per failure mode, each naming its key ------------------------

# (overrides of the default data section, the key the error must name).
BAD_DATA = [
  ({'name': ''}, 'name'),
  ({'name': None}, 'name'),
  ({'data_dir': ''}, 'data_dir'),
  ({'train_split': ''}, 'train_split'),
  ({'eval_split': 3}, 'eval_split'),
  ({'num_frames': 0}, 'num_frames'),
  ({'num_frames': 2.0}, 'num_frames'),
  ({'stride': 0}, 'stride'),
  ({'pad_mode': 'wrap'}, 'pad_mode'),
  ({'temporal_jitter': -1}, 'temporal_jitter'),
  ({'targeted_beta': 0.0}, 'targeted_beta'),
  ({'targeted_beta': float('nan')}, 'targeted_beta'),
  ({'motion_window_seconds': 0.0}, 'motion_window_seconds'),
  ({'crop_size': 0}, 'crop_size'),
  ({'resize_short_side': 0}, 'resize_short_side'),
  ({'crop': 'center'}, 'crop'),
  ({'min_area': 0.0}, 'min_area'),
  ({'max_area': 1.5}, 'max_area'),
  ({'min_area': 0.8, 'max_area': 0.5}, 'min_area'),
  ({'min_aspect_ratio': 0.0}, 'min_aspect_ratio'),
  ({'max_aspect_ratio': 'wide'}, 'max_aspect_ratio'),
  ({'min_aspect_ratio': 2.0, 'max_aspect_ratio': 1.0}, 'min_aspect_ratio'),
  ({'crop_max_attempts': 0}, 'crop_max_attempts'),
  ({'flip_prob': 1.5}, 'flip_prob'),
  ({'color_jitter_strength': (0.4, 0.4, 0.4)}, 'color_jitter_strength'),
  ({'color_jitter_strength': (0.4, -0.1, 0.4, 0.1)}, 'color_jitter_strength'),
  ({'color_jitter_strength': (0.4, 0.4, 0.4, 0.6)}, 'color_jitter_strength'),
  ({'color_jitter_prob': -0.1}, 'color_jitter_prob'),
  ({'color_jitter_random_order': 1}, 'color_jitter_random_order'),
  ({'grayscale_prob': 2.5}, 'grayscale_prob'),
  ({'blur_prob': None}, 'blur_prob'),
  ({'blur_sigma': (0.0, 2.0)}, 'blur_sigma'),
  ({'blur_sigma': (2.0, 1.0)}, 'blur_sigma'),
  ({'blur_truncate': 0.0}, 'blur_truncate'),
  ({'mean': (0.5, 0.5)}, 'mean'),
  ({'std': (0.2, 0.0, 0.2)}, 'std'),
  ({'eval_crop': 'five'}, 'eval_crop'),
  ({'eval_resize_short_side': -1}, 'eval_resize_short_side'),
  ({'eval_shuffle_seed': 0.5}, 'eval_shuffle_seed'),
  ({'frame_step': 0}, 'frame_step'),
  ({'frame_shuffle_buffer': -1}, 'frame_shuffle_buffer'),
  ({'shuffle_buffer': -1}, 'shuffle_buffer'),
  ({'num_parallel_calls': 0}, 'num_parallel_calls'),
  ({'prefetch': -1}, 'prefetch'),
  ({'cache': 'yes'}, 'cache'),
  ({'num_threads': -1}, 'num_threads'),
  ({'transfer_dtype': 'float16'}, 'transfer_dtype'),
  ({'device_augment': 1}, 'device_augment'),
  ({'decode_crop': 'yes'}, 'decode_crop'),
  ({'decode_crop': True, 'resize_short_side': 36}, 'decode_crop'),
  ({'device_prefetch': -1}, 'device_prefetch'),
]


def test_check_data_config_accepts_the_defaults_and_the_test_config():
  data_config.check_data_config(data_config.default_data_config())
  data_config.check_data_config(make_cfg(photometric=True))
  data_config.check_data_config(make_cfg(resize_short_side=36, targeted_beta=float('inf')))


def test_every_data_key_has_a_failure_case():
  assert {key for _, key in BAD_DATA} == set(data_config.default_data_config().keys())


@pytest.mark.parametrize('overrides,key', BAD_DATA, ids=[f'{k}={o[k]!r}' for o, k in BAD_DATA])
def test_check_data_config_names_the_bad_key(overrides, key):
  cfg = data_config.default_data_config()
  with cfg.ignore_type():
    for k, v in overrides.items():
      cfg[k] = v
  with pytest.raises(ConfigError, match=re.escape(f'config.data.{key}={overrides[key]!r}: ')):
    data_config.check_data_config(cfg)


def test_check_data_config_names_a_missing_key():
  cfg = data_config.default_data_config().to_dict()
  del cfg['blur_truncate']
  with pytest.raises(ConfigError, match=r'config\.data\.blur_truncate is missing'):
    data_config.check_data_config(ml_collections.ConfigDict(cfg))


def test_pipelines_do_not_check_the_data_config_again():
  # Checking values is check_data_config's job, done once when the config loads.
  ds = pipeline.make_eval_dataset(
    make_cfg(flip_prob=2.0), batch_size=7, num_clips=1, source=make_source()
  )
  assert len(list(ds.as_numpy_iterator())) == 1


def test_eval_dataset_needs_num_clips_from_the_caller():
  assert 'eval_num_clips' not in data_config.default_data_config()
  with pytest.raises(TypeError, match='num_clips'):
    pipeline.make_eval_dataset(make_cfg(), batch_size=2, source=make_source())


def test_load_split_tfds_sharding(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  class PipelineTestVideos(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
          {
            'video': tfds.features.Video(shape=(None, H, W, 3), encoding_format='jpeg'),
            'label': tfds.features.ClassLabel(num_classes=3),
            'video_id': tfds.features.Text(),
            'num_frames': tfds.features.Scalar(dtype=np.int32),
            'fps': tfds.features.Scalar(dtype=np.float32),
            'motion_scores': tfds.features.Tensor(shape=(None,), dtype=np.float32),
          }
        )
      )

    def _split_generators(self, dl_manager):
      return {'train': self._generate_examples()}

    def _generate_examples(self):
      for v in range(5):
        n = 8 + v
        video = np.stack([tf.io.decode_jpeg(_frame(t)).numpy() for t in range(n)])
        yield (
          v,
          {
            'video': video,
            'label': v % 3,
            'video_id': f'vid{v}',
            'num_frames': n,
            'fps': FPS,
            'motion_scores': np.ones([2], np.float32),
          },
        )

  PipelineTestVideos(data_dir=str(tmp_path)).download_and_prepare()
  cfg = make_cfg(name='pipeline_test_videos', data_dir=str(tmp_path))
  whole = list(reading.load_split(cfg, 'train').as_numpy_iterator())
  assert whole[0]['video'].dtype == object  # JPEG bytes, not decoded
  assert [int(r['index']) for r in whole] == list(range(5))
  stored_ids = [r['video_id'].decode() for r in whole]  # TFDS fixes the stored order
  assert sorted(stored_ids) == [f'vid{v}' for v in range(5)]
  rows = [list(reading.load_split(cfg, 'train', p, 2).as_numpy_iterator()) for p in range(2)]
  idx = [int(r['index']) for shard in rows for r in shard]
  assert idx == list(range(5))  # contiguous shards, disjoint and complete
  assert [r['video_id'].decode() for shard in rows for r in shard] == stored_ids
  local = reading.local_split(cfg, 'train', process_index=1, process_count=2)
  assert (local.num_examples, local.total_examples) == (len(rows[1]), 5)
  batches = list(
    pipeline.make_eval_dataset(
      cfg, 'train', batch_size=2, num_clips=2, num_frames=4, stride=1
    ).as_numpy_iterator()
  )
  assert sum(b['valid'].sum() for b in batches) == 5


# --- input checks (warnings only) -------------------------------------------------------------


@pytest.fixture
def no_earlier_warnings(monkeypatch):
  """Each cause warns once per process: start every test with none reported."""
  monkeypatch.setattr(input_checks, '_warned', set())


def warning_lines(capsys):
  return [
    line for line in capsys.readouterr().out.splitlines() if line.startswith('[jaxvssl] warning:')
  ]


def test_overlong_clip_warns_once_and_changes_no_tensor(no_earlier_warnings, capsys, monkeypatch):
  cfg = make_cfg(num_frames=16, stride=2)  # a window of 31 frames; the shortest video has 24
  views = (V.ViewSpec('query', 16, 2),)

  def train():
    return pipeline.make_train_dataset(
      cfg, views, global_batch_size=2, seed=5, source=make_source()
    )

  with pytest.warns(input_checks.InputWarning, match=r'config\.data\.num_frames=16') as record:
    ds = train()
    train()  # the same cause: reported once
  assert len(record) == 1
  (line,) = warning_lines(capsys)
  for part in (
    'training clips are longer than the videos',
    'config.data.stride=2',
    '3 of the first 7 videos',
    'shortest: 24 frames',
    "4 of the 16 frames of 'query' repeat the video's last frame",
    '--min_frames 31',
  ):
    assert part in line, part
  with pytest.warns(input_checks.InputWarning, match='evaluation clips are longer'):
    pipeline.make_eval_dataset(cfg, batch_size=2, num_clips=2, source=make_source())
  assert 'num_frames=16, stride=2 need a window of 31 frames' in warning_lines(capsys)[0]
  # The check reads on the side: batches equal those of a pipeline that never probes.
  batches = take(ds, 3)
  monkeypatch.setattr(input_checks, 'probe', lambda *args, **kwargs: None)
  assert_batches_equal(take(train(), 3), batches)
  assert warning_lines(capsys) == []


def test_oversize_crop_warns_for_train_eval_and_frames(no_earlier_warnings, capsys):
  cfg = make_cfg(crop_size=40)  # frames are 32 x 40
  views = (V.ViewSpec('clip', 4, 2),)
  with pytest.warns(input_checks.InputWarning, match=r'config\.data\.crop_size=40'):
    pipeline.make_train_dataset(cfg, views, global_batch_size=2, seed=0, source=make_source())
    pipeline.make_eval_dataset(cfg, batch_size=2, num_clips=1, source=make_source())
    pipeline.make_frame_dataset(cfg, global_batch_size=2, seed=0, source=make_source())
  lines = warning_lines(capsys)
  assert [line.split(':')[1].strip() for line in lines] == [
    'training crops are larger than the frames',
    'evaluation crops are larger than the frames',
    'frame crops are larger than the frames',
  ]
  assert all('short side of 32 pixels' in line and '1.25x upsampled' in line for line in lines)
  assert all('--short_side 40' in line for line in lines)
  # A resize below the crop names its key; eval's centre crop then pads.
  cfg = make_cfg(crop_size=16, eval_resize_short_side=12)
  with pytest.warns(input_checks.InputWarning, match='zero-padded'):
    pipeline.make_eval_dataset(cfg, batch_size=2, num_clips=1, source=make_source())
  (line,) = warning_lines(capsys)
  assert 'config.data.eval_resize_short_side=12' in line and 'to 16 or more' in line


def test_fitting_config_does_not_warn(no_earlier_warnings, capsys):
  import warnings  # pylint: disable=g-import-not-at-top

  cfg = make_cfg(crop_size=32, num_frames=8, stride=3)  # window 22 <= 24 frames, crop = short side
  with warnings.catch_warnings():
    warnings.simplefilter('error', input_checks.InputWarning)
    pipeline.make_train_dataset(
      cfg, (V.ViewSpec('clip', 8, 3),), global_batch_size=2, seed=0, source=make_source()
    )
    pipeline.make_eval_dataset(cfg, batch_size=2, num_clips=2, source=make_source())
    pipeline.make_frame_dataset(cfg, global_batch_size=2, seed=0, source=make_source())
  assert warning_lines(capsys) == []

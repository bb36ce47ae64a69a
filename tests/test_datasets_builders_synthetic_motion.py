"""Tests of the synthetic_motion TFDS builder (jaxvssl.datasets.builders.synthetic_motion)."""

import collections

import numpy as np
import pytest

from jaxvssl.datasets import synthetic


@pytest.fixture(scope='module')
def tiny_builder(tmp_path_factory):
  from jaxvssl.datasets.builders import synthetic_motion  # pylint: disable=g-import-not-at-top

  data_dir = tmp_path_factory.mktemp('tfds')
  return synthetic_motion.build_synthetic_motion(data_dir, 'tiny', num_workers=0), data_dir


def test_tiny_build_counts_features_dtypes(tiny_builder):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder, data_dir = tiny_builder
  assert builder.info.splits['train'].num_examples == 64
  assert builder.info.splits['test'].num_examples == 32
  assert builder.info.features['label'].names == list(synthetic.CLASS_NAMES)
  assert builder.info.metadata['motion_top_k'] == 187
  # Resolvable by name after the import registered the builder.
  reloaded = tfds.builder('synthetic_motion/tiny', data_dir=data_dir)
  ds = reloaded.as_dataset('train', decoders={'video': tfds.decode.SkipDecoding()})
  assert ds.element_spec['video'].dtype == tf.string
  assert ds.element_spec['label'].dtype == tf.int64
  assert ds.element_spec['num_frames'].dtype == tf.int32
  assert ds.element_spec['fps'].dtype == tf.float32
  assert ds.element_spec['motion_scores'].dtype == tf.float32
  labels, ids = collections.Counter(), set()
  for ex in tfds.as_numpy(ds):
    labels[int(ex['label'])] += 1
    ids.add(ex['video_id'])
    assert ex['video'].shape == (16,) and ex['num_frames'] == 16 and ex['fps'] == 16.0
    assert ex['motion_scores'].shape == (1,)  # 16 frames at 16 fps: one window
  assert set(labels.values()) == {4} and len(ids) == 64
  # Decoded frames match the generator up to JPEG loss; scores exactly.
  (ex,) = tfds.as_numpy(
    reloaded.as_dataset('test').filter(lambda e: e['video_id'] == 'synthetic_motion_test_000003')
  )
  ref = synthetic.generate_example(
    builder.builder_config.synthetic_config(), 'test', 3, motion_top_k=187
  )
  assert ex['video'].shape == (16, 32, 32, 3) and ex['video'].dtype == np.uint8
  # Mean absolute JPEG error (quality 95, 4:2:0 like tf.io.encode_jpeg) is
  # 2-8 levels on these small, colourful frames.
  assert np.abs(ex['video'].astype(int) - ref['video']).mean() < 10
  assert ex['label'] == ref['label']
  np.testing.assert_array_equal(ex['motion_scores'], ref['motion_scores'])


def test_custom_config_name_and_validation():
  from jaxvssl.datasets.builders import synthetic_motion  # pylint: disable=g-import-not-at-top

  cfg = synthetic_motion.make_config('tiny', num_train=32, resolution=(24, 32))
  assert cfg.name == 'tiny_num_train32_resolution24x32'
  assert cfg.height_width == (24, 32) and cfg.num_frames == 16
  assert synthetic_motion.make_config('tiny', num_train=64).name == 'tiny'
  with pytest.raises(ValueError, match='unknown config overrides'):
    synthetic_motion.make_config('tiny', frames=3)
  with pytest.raises(ValueError, match='unknown config'):
    synthetic_motion.make_config('huge')
  with pytest.raises(ValueError, match='invalid num_frames=1'):
    synthetic_motion.make_config('tiny', num_frames=1)


def test_parallel_generation_matches_serial(tmp_path):
  from jaxvssl.datasets.builders import synthetic_motion  # pylint: disable=g-import-not-at-top

  config = synthetic_motion.make_config('tiny', num_train=16, num_test=0, num_frames=4)

  def records(num_workers):
    builder = synthetic_motion.SyntheticMotion(
      data_dir=str(tmp_path), config=config, num_workers=num_workers
    )
    return list(builder._generate_examples('train', 16))  # pylint: disable=protected-access

  serial, parallel = records(0), records(2)  # 2 spawned worker processes
  assert [k for k, _ in serial] == [k for k, _ in parallel]
  for (_, a), (_, b) in zip(serial, parallel):
    assert a['video'] == b['video'] and a['label'] == b['label']
    np.testing.assert_array_equal(a['motion_scores'], b['motion_scores'])

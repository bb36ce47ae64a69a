"""rate_order segment sampler: NumPy and tf.data versions checked on the same invariants."""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from jaxvssl.inputs import segments as S


def check_invariants(
  indices, order_class, perm, rates, lengths, video_length, clip_length, n, rate_range, min_len=3
):
  indices, perm, rates, lengths = (np.asarray(v) for v in (indices, perm, rates, lengths))
  assert indices.shape == (clip_length,) and perm.shape == rates.shape == lengths.shape == (n,)
  assert np.all(lengths >= min_len) and lengths.sum() == clip_length
  assert np.all((rates >= rate_range[0]) & (rates <= rate_range[1]))
  assert np.all((indices >= 0) & (indices < video_length))
  # The class decodes back to the applied order.
  np.testing.assert_array_equal(S.class_to_permutation(int(order_class), n), perm)
  # Cut the clip into its input segments; each is an arithmetic run at its own rate.
  bounds = np.concatenate([[0], np.cumsum(lengths)])
  segs = [indices[bounds[j] : bounds[j + 1]] for j in range(n)]
  for seg, r in zip(segs, rates):
    np.testing.assert_array_equal(np.diff(seg), r)
  # Undo the shuffle: timeline segment k sits at input position where perm == k, and the
  # timeline segments are consecutive: next start = previous start + length * rate.
  where = np.argsort(perm)
  for k in range(n - 1):
    a, b = where[k], where[k + 1]
    assert segs[b][0] == segs[a][0] + lengths[a] * rates[a]


def test_permutation_class_is_lexicographic():
  for n in (2, 3, 4):
    for c, p in enumerate(itertools.permutations(range(n))):
      assert S.permutation_to_class(p) == c
      np.testing.assert_array_equal(S.class_to_permutation(c, n), p)


@pytest.mark.parametrize('n', [2, 3, 4, 5])
def test_numpy_sampler_invariants(n):
  rng = np.random.default_rng(n)
  classes, all_rates = [], []
  for i in range(300):
    v = [40, 64, 300][i % 3]
    s = S.sample_segments(rng, v, 16, n, (1, 8))
    check_invariants(s.indices, s.order_class, s.permutation, s.rates, s.lengths, v, 16, n, (1, 8))
    classes.append(s.order_class)
    all_rates.append(s.rates)
  if n <= 3:
    assert set(classes) == set(range(math.factorial(n)))  # every order occurs
  assert set(np.concatenate(all_rates)) == set(range(1, 9))


def test_rates_resampled_for_short_videos_and_errors():
  rng = np.random.default_rng(0)
  for v in (16, 17, 31, 46):  # 16 fits only rate 1; 31 fits all-2; 46 fits all-3
    s = S.sample_segments(rng, v, 16, 3, (1, 8))
    check_invariants(s.indices, s.order_class, s.permutation, s.rates, s.lengths, v, 16, 3, (1, 8))
  with pytest.raises(ValueError, match=r'video has 15 frames.*spans 16 frames'):
    S.sample_segments(rng, 15, 16, 3, (1, 8))
  with pytest.raises(ValueError, match='video has 40 frames.*rate 3 spans 46'):
    S.sample_segments(rng, 40, 16, 3, (3, 8))
  with pytest.raises(ValueError, match='do not fit'):
    S.sample_segments(rng, 100, 16, 6, (1, 8))


def test_tf_sampler_invariants_inside_tf_data():
  n, rate_range = 3, (1, 8)
  lengths_v = tf.constant([40, 64, 300, 16])

  def make(i):
    v = lengths_v[i % 4]
    out = S.sample_segments_tf(tf.stack([i, 7]), v, 16, n, rate_range)
    out['video_length'] = v
    return out

  ds = tf.data.Dataset.range(400).map(make).batch(400)
  batch = {k: v.numpy() for k, v in next(iter(ds)).items()}
  for i in range(400):
    check_invariants(
      batch['indices'][i],
      batch['order_class'][i],
      batch['permutation'][i],
      batch['rates'][i],
      batch['lengths'][i],
      batch['video_length'][i],
      16,
      n,
      rate_range,
    )
  assert set(batch['order_class']) == set(range(6))
  assert set(batch['rates'].ravel()) == set(range(1, 9))
  # Stateless: the same seed gives the same sample.
  a = S.sample_segments_tf(tf.constant([5, 6]), 100)
  b = S.sample_segments_tf(tf.constant([5, 6]), 100)
  np.testing.assert_array_equal(a['indices'], b['indices'])
  with pytest.raises(tf.errors.InvalidArgumentError, match='video too short'):
    S.sample_segments_tf(tf.constant([1, 2]), 15)


def test_numpy_and_tf_length_distributions_agree():
  # Same semantics, different streams: compare the mean segment length per timeline position.
  rng = np.random.default_rng(0)
  np_len = np.array([np.sort(S.sample_segments(rng, 300).lengths) for _ in range(300)])
  ds = (
    tf.data.Dataset.range(300)
    .map(lambda i: tf.sort(S.sample_segments_tf(tf.stack([i, 1]), 300)['lengths']))
    .batch(300)
  )
  tf_len = next(iter(ds)).numpy()
  np.testing.assert_allclose(np_len.mean(0), tf_len.mean(0), atol=0.5)

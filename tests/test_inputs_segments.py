"""rate_order segment sampler: NumPy and tf.data versions checked on the same invariants, and
the realised rate distribution of both rate draws (uniform where the video holds every span)."""

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


@pytest.mark.parametrize('rate_draw', S.RATE_DRAWS)
@pytest.mark.parametrize('n', [2, 3, 4, 5])
def test_numpy_sampler_invariants(n, rate_draw):
  rng = np.random.default_rng(n)
  classes, all_rates = [], []
  for i in range(300):
    v = [40, 64, 300][i % 3]
    s = S.sample_segments(rng, v, 16, n, (1, 8), rate_draw=rate_draw)
    check_invariants(s.indices, s.order_class, s.permutation, s.rates, s.lengths, v, 16, n, (1, 8))
    classes.append(s.order_class)
    all_rates.append(s.rates)
  if n <= 3:
    assert set(classes) == set(range(math.factorial(n)))  # every order occurs
  assert set(np.concatenate(all_rates)) == set(range(1, 9))


@pytest.mark.parametrize('rate_draw', S.RATE_DRAWS)
def test_rates_resampled_for_short_videos_and_errors(rate_draw):
  rng = np.random.default_rng(0)
  for v in (16, 17, 31, 46):  # 16 fits only rate 1; 31 fits all-2; 46 fits all-3
    for _ in range(20):
      s = S.sample_segments(rng, v, 16, 3, (1, 8), rate_draw=rate_draw)
      check_invariants(
        s.indices, s.order_class, s.permutation, s.rates, s.lengths, v, 16, 3, (1, 8)
      )
  with pytest.raises(ValueError, match=r'video has 15 frames.*spans 16 frames'):
    S.sample_segments(rng, 15, 16, 3, (1, 8))
  with pytest.raises(ValueError, match='video has 40 frames.*rate 3 spans 46'):
    S.sample_segments(rng, 40, 16, 3, (3, 8))
  with pytest.raises(ValueError, match='do not fit'):
    S.sample_segments(rng, 100, 16, 6, (1, 8))
  with pytest.raises(ValueError, match='min_segment_length=1 must be >= 2'):
    S.sample_segments(rng, 100, 8, 3, (1, 8), min_segment_length=1)
  with pytest.raises(ValueError, match='rate_draw'):
    S.sample_segments(rng, 100, rate_draw='uniform')


@pytest.mark.parametrize('rate_draw', S.RATE_DRAWS)
def test_tf_sampler_invariants_inside_tf_data(rate_draw):
  n, rate_range = 3, (1, 8)
  lengths_v = tf.constant([40, 64, 300, 16])

  def make(i):
    v = lengths_v[i % 4]
    out = S.sample_segments_tf(tf.stack([i, 7]), v, 16, n, rate_range, rate_draw=rate_draw)
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


# --- the realised rate distribution ------------------------------------------------------------


def _np_rates(num, video_length, clip_length, rate_range, min_len, rate_draw, n=3, seed=0):
  rng = np.random.default_rng(seed)
  return np.stack(
    [
      S.sample_segments(
        rng, video_length, clip_length, n, rate_range, min_len, rate_draw=rate_draw
      ).rates
      for _ in range(num)
    ]
  )


def _tf_rates(num, video_length, clip_length, rate_range, min_len, rate_draw, n=3):
  ds = (
    tf.data.Dataset.range(num)
    .map(
      lambda i: S.sample_segments_tf(
        tf.stack([i, 3]), video_length, clip_length, n, rate_range, min_len, rate_draw=rate_draw
      )['rates']
    )
    .batch(num)
  )
  return next(iter(ds)).numpy()


def _chi_square(rates, rate_range):
  values = np.arange(rate_range[0], rate_range[1] + 1)
  counts = np.array([np.sum(rates == v) for v in values])
  expected = rates.size / len(values)
  return float(np.sum((counts - expected) ** 2 / expected)), len(values) - 1


@pytest.mark.parametrize('impl', [_np_rates, _tf_rates])
def test_sequential_rates_are_uniform_when_the_video_holds_every_span(impl):
  # 8-frame clips of 3 segments of >= 2 frames at rates [1, 8] span at most 57 frames: a
  # 60-frame video holds them all, so every rate must be equally frequent (chi-square, 7 degrees
  # of freedom: the 0.999 quantile is 24.3).
  rates = impl(2000, 60, 8, (1, 8), 2, 'sequential')
  chi2, dof = _chi_square(rates, (1, 8))
  assert dof == 7 and chi2 < 24.3, chi2
  # ... and each input position on its own (the random visiting order spreads the draws).
  for position in range(3):
    assert _chi_square(rates[:, position], (1, 8))[0] < 24.3


def test_sequential_draw_reaches_higher_rates_than_first_fit_on_short_videos():
  # 16-frame clips on 48-frame videos (synthetic_motion): no draw can be uniform (the weighted
  # mean rate is at most 47 / 15), but 'first_fit' (uniform over the fitting vectors) skews every
  # rate low, so that [1, 8] and [1, 4] barely differ; the sequential draw keeps them apart.
  means = {
    (draw, hi): _np_rates(3000, 48, 16, (1, hi), 3, draw).mean()
    for draw in S.RATE_DRAWS
    for hi in (4, 8)
  }
  assert means['sequential', 8] > means['first_fit', 8] + 0.1
  assert means['sequential', 8] - means['sequential', 4] > 0.45
  assert means['first_fit', 8] - means['first_fit', 4] < 0.5
  # The highest rate stays reachable (first_fit: 1.9 % of the segments, sequential: 2.9 %).
  assert np.mean(_np_rates(3000, 48, 16, (1, 8), 3, 'sequential') == 8) > 0.02


@pytest.mark.parametrize('rate_draw', S.RATE_DRAWS)
def test_numpy_and_tf_rate_distributions_agree(rate_draw):
  a = _np_rates(3000, 48, 16, (1, 8), 3, rate_draw)
  b = _tf_rates(3000, 48, 16, (1, 8), 3, rate_draw)
  for v in range(1, 9):
    assert abs(np.mean(a == v) - np.mean(b == v)) < 0.02, v


def test_tiny_scale_eight_frame_clips_with_two_frame_segments():
  """The tiny rule: 8-frame clips hold n <= 4 segments of >= 2 frames (3 of >= 3 do not fit)."""
  rng = np.random.default_rng(0)
  for n in (2, 3, 4):
    for _ in range(50):
      s = S.sample_segments(rng, 48, 8, n, (1, 8), 2)
      check_invariants(
        s.indices, s.order_class, s.permutation, s.rates, s.lengths, 48, 8, n, (1, 8), 2
      )
  with pytest.raises(ValueError, match='do not fit'):
    S.sample_segments(rng, 48, 8, 3, (1, 8), 3)


def test_length_multiple_keeps_every_seam_on_a_group_boundary():
  """length_multiple=2 (rate_order's tiny scale with 2-frame input groups): every length is even,
  both samplers draw every even composition, and a multiple that does not divide is an error."""
  rng = np.random.default_rng(1)
  numpy_lengths, tf_lengths = set(), set()
  for i in range(60):
    s = S.sample_segments(rng, 48, 8, 3, (1, 8), 2, length_multiple=2)
    check_invariants(
      s.indices, s.order_class, s.permutation, s.rates, s.lengths, 48, 8, 3, (1, 8), 2
    )
    numpy_lengths.add(tuple(s.lengths))
    t = S.sample_segments_tf(tf.constant([i, 7]), 48, 8, 3, (1, 8), 2, length_multiple=2)
    t = {k: v.numpy() for k, v in t.items()}
    check_invariants(
      t['indices'],
      t['order_class'],
      t['permutation'],
      t['rates'],
      t['lengths'],
      48,
      8,
      3,
      (1, 8),
      2,
    )
    tf_lengths.add(tuple(t['lengths']))
  assert numpy_lengths == tf_lengths == {(2, 2, 4), (2, 4, 2), (4, 2, 2)}
  with pytest.raises(ValueError, match='length_multiple=3'):
    S.sample_segments(rng, 48, 8, 3, (1, 8), 2, length_multiple=3)

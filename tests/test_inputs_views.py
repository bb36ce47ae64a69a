"""Tests of jaxvssl.inputs.views: ready-made extras and the validation of view plans."""

import numpy as np
import pytest

from jaxvssl.inputs import views as V
from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()


@pytest.mark.parametrize('class_probs', [None, (0.7, 0.2, 0.1)])
def test_permutation_bank_extra_class_distribution(class_probs):
  from scipy import stats  # pylint: disable=g-import-not-at-top

  banks = np.arange(3 * 4 * 5).reshape(3, 4, 5)
  extra = V.permutation_bank_extra(banks, name='p', class_probs=class_probs)
  n = 1500
  ds = tf.data.Dataset.range(n).map(lambda i: extra.fn({}, tf.stack([tf.constant(9, tf.int64), i])))
  out = next(ds.batch(n).as_numpy_iterator())
  labels, perms = out['p_label'], out['p_perm']
  np.testing.assert_array_equal(perms[:, 0] // 20, labels)  # row comes from its class bank
  assert len(np.unique(perms[:, 0])) == 12  # every row of every bank used
  expected = n * np.asarray(class_probs or (1 / 3,) * 3)
  assert stats.chisquare(np.bincount(labels, minlength=3), expected)[1] > 1e-3


def test_view_validation_names_the_problem():
  with pytest.raises(ValueError, match='duplicate view names'):
    V.plan_views([V.ViewSpec('a', 4), V.ViewSpec('a', 4)])
  with pytest.raises(ValueError, match='mixes samplers'):
    V.plan_views(
      [
        V.ViewSpec('a', 4, temporal_group=0),
        V.ViewSpec('b', 4, temporal_group=0, sampler='targeted'),
      ]
    )
  with pytest.raises(ValueError, match="'nope'"):
    V.plan_views([V.ViewSpec('a', 4, sampler='extra', indices_key='nope')])
  with pytest.raises(ValueError, match='collides'):
    V.plan_views([V.ViewSpec('a', 4)], [V.Extra('e', lambda ex, s: {}, ('a',))])
  with pytest.raises(ValueError, match='reserved|name'):
    V.ViewSpec('label', 4)


def _draw(extra, n, base=3):
  ds = tf.data.Dataset.range(n).map(
    lambda i: extra.fn({}, tf.stack([tf.constant(base, tf.int64), i]))
  )
  return next(ds.batch(n).as_numpy_iterator())


def test_shuffle_degree_class_tf_equals_the_numpy_levenshtein():
  from jaxvssl.inputs import permutations  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  for f in (3, 5, 8, 16):
    perms = [np.arange(f), np.arange(f)[::-1]]
    perms += [rng.permutation(f) for _ in range(40)]
    perms += list(permutations.subset_shuffle(40, f, rng))
    perms = np.stack(perms).astype(np.int32)
    fn = tf.function(V.shuffle_degree_class_tf, input_signature=[tf.TensorSpec([f], tf.int32)])
    got = [int(fn(tf.constant(p))) for p in perms]
    want = permutations.distance_to_class(permutations.batch_levenshtein(perms, np.arange(f)))
    np.testing.assert_array_equal(got, want)


def test_subset_shuffle_extra_draws_the_released_sampler():
  from jaxvssl.inputs import permutations  # pylint: disable=g-import-not-at-top

  n, f = 20_000, 16
  out = _draw(V.subset_shuffle_extra(f, name='sdp'), n)
  perms, labels = out['sdp_perm'], out['sdp_label']
  assert perms.shape == (n, f) and perms.dtype == np.int32 and labels.shape == (n,)
  np.testing.assert_array_equal(np.sort(perms, 1), np.broadcast_to(np.arange(f), (n, f)))
  np.testing.assert_array_equal(
    labels, permutations.distance_to_class(permutations.batch_levenshtein(perms, np.arange(f)))
  )
  exact = permutations.subset_shuffle_identity_probability(f)  # 0.1074
  assert abs(np.mean(labels == 0) - exact) < 5 * np.sqrt(exact * (1 - exact) / n)
  # The same distribution of moved frames as the NumPy sampler.
  ref = permutations.subset_shuffle(n, f, np.random.default_rng(0))
  moved = lambda p: np.bincount((p != np.arange(f)).sum(1), minlength=f + 1)
  from scipy import stats  # pylint: disable=g-import-not-at-top

  assert stats.chi2_contingency(np.stack([moved(perms), moved(ref)]) + 1).pvalue > 1e-3
  # Deterministic in the seed; uniform=False permutes all frames (1 fixed point on average).
  np.testing.assert_array_equal(
    _draw(V.subset_shuffle_extra(f, name='sdp'), 50)['sdp_perm'], perms[:50]
  )
  full = _draw(V.subset_shuffle_extra(f, name='k', uniform=False), 4000)['k_perm']
  assert abs(np.mean((full == np.arange(f)).sum(1)) - 1.0) < 0.1
  assert np.mean(np.all(full == np.arange(f), 1)) == 0.0

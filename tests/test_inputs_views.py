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

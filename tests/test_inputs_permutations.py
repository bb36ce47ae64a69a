"""jaxvssl.inputs.permutations: Levenshtein, ShuffleDegreeSampler (the shuffle-degree prediction of
CACL, "Cross-Architecture Self-supervised Video Representation Learning", Guo et al., CVPR 2022) and
SCVRL's group-shuffle negatives."""

import functools
import math

import numpy as np
import pytest
from scipy import stats

from jaxvssl.inputs import permutations as P


def ref_levenshtein(a, b):
  """Textbook recursive definition (CACL eq. 5), memoised; independent of the DP in P."""
  a, b = tuple(int(v) for v in a), tuple(int(v) for v in b)

  @functools.lru_cache(maxsize=None)
  def lev(i, j):
    if min(i, j) == 0:
      return max(i, j)
    return min(lev(i - 1, j) + 1, lev(i, j - 1) + 1, lev(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

  return lev(len(a), len(b))


def test_levenshtein_hand_cases():
  assert P.levenshtein([0, 1, 2], [0, 1, 2]) == 0
  assert P.levenshtein([0, 1, 2], [1, 0, 2]) == 2  # adjacent swap: two substitutions
  assert P.levenshtein([0, 1, 2, 3], [1, 2, 3, 0]) == 2  # move one frame: delete + insert
  assert P.levenshtein([1, 0], [10]) == 2  # 10 is ONE symbol, not the string '10'
  assert P.levenshtein([], [3, 4]) == 2
  assert P.levenshtein(list(range(16)), list(range(15, -1, -1))) == 16


def test_levenshtein_matches_reference_on_random_sequences():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 6, size=(40, 7))
  b = rng.integers(0, 6, size=(40, 9))
  want = [ref_levenshtein(x, y) for x, y in zip(a, b)]
  assert [P.levenshtein(x, y) for x, y in zip(a, b)] == want
  np.testing.assert_array_equal(P.batch_levenshtein(a, b), want)


@pytest.fixture(scope='module')
def sampler16():
  return P.ShuffleDegreeSampler(num_frames=16, uniform=True, seed=0)


def test_banks_shape_and_every_row_label_is_its_distance(sampler16):
  assert sampler16.bank_size == 1024
  banks = sampler16.banks
  assert banks.dtype == np.int32 and banks.shape == (16, sampler16.bank_size, 16)
  identity = list(range(16))
  np.testing.assert_array_equal(np.sort(banks, axis=-1), np.broadcast_to(identity, banks.shape))
  # Every row, by the vectorised DP (itself checked against the reference above) ...
  labels = P.distance_to_class(P.batch_levenshtein(banks.reshape(-1, 16), np.arange(16)))
  np.testing.assert_array_equal(labels.reshape(16, -1), np.repeat(np.arange(16)[:, None], 1024, 1))
  rng = np.random.default_rng(0)
  for c in range(16):
    rows = np.unique(banks[c], axis=0)
    if c:
      assert len(rows) >= 16  # diverse
    # ... and a sample of each bank by the textbook recursion.
    for r in rows[rng.choice(len(rows), min(len(rows), 25), replace=False)]:
      d = ref_levenshtein(identity, r)
      assert (0 if d == 0 else d - 1) == c


def test_uniform_labels_chi_square_and_exact(sampler16):
  perms, labels = sampler16.sample(16000)
  assert perms.shape == (16000, 16) and perms.dtype == np.int32 and labels.dtype == np.int32
  counts = np.bincount(labels, minlength=16)
  assert stats.chisquare(counts).pvalue > 1e-3
  np.testing.assert_array_equal(
    P.distance_to_class(P.batch_levenshtein(perms, np.arange(16))), labels
  )
  # Spot-check the vectorised distance against the reference on a subset.
  for p, l in zip(perms[:100], labels[:100]):
    d = ref_levenshtein(range(16), p)
    assert (0 if d == 0 else d - 1) == l


def test_non_uniform_ablation_is_skewed_and_exact():
  perms, labels = P.ShuffleDegreeSampler(num_frames=16, uniform=False, seed=1).sample(4000)
  np.testing.assert_array_equal(
    P.distance_to_class(P.batch_levenshtein(perms, np.arange(16))), labels
  )
  counts = np.bincount(labels, minlength=16)
  assert counts[:5].sum() == 0 and stats.chisquare(counts).pvalue < 1e-6


def test_small_clips_and_unreachable_classes():
  s = P.ShuffleDegreeSampler(num_frames=8, seed=0)
  assert s.banks.shape[:2] == (8, s.bank_size)
  _, labels = s.sample(8000)
  assert stats.chisquare(np.bincount(labels, minlength=8)).pvalue > 1e-3
  with pytest.raises(ValueError, match=r'num_frames=3.*class 2'):
    P.ShuffleDegreeSampler(num_frames=3)


def test_seeded_reproducibility():
  a = P.ShuffleDegreeSampler(num_frames=8, seed=3).sample(50)
  b = P.ShuffleDegreeSampler(num_frames=8, seed=3).sample(50)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])


def test_group_shuffle_negatives():
  neg = P.group_shuffle_negatives(16, 2, 12, np.random.default_rng(0))
  assert neg.shape == (12, 16) and neg.dtype == np.int32
  assert len({tuple(r) for r in neg}) == 12
  for r in neg:
    assert sorted(r) == list(range(16)) and list(r) != list(range(16))
    # Groups of 2 consecutive frames move together: (2g, 2g+1) pairs stay intact.
    assert np.all(r[0::2] % 2 == 0) and np.all(r[1::2] == r[0::2] + 1)
  # 3 groups have 5 non-identity orders: all of them are reachable, a 6th is an error.
  assert len({tuple(r) for r in P.group_shuffle_negatives(6, 2, 5, np.random.default_rng(1))}) == 5
  with pytest.raises(ValueError, match='exceeds'):
    P.group_shuffle_negatives(6, 2, 6)
  with pytest.raises(ValueError, match='divisible'):
    P.group_shuffle_negatives(15, 2, 3)


def _released_reference(n, f, rng):
  """The released CACL code's loop (datasets/ucf101.py, UCF101CACLDataset, lines 281-296), one
  sample at a time, with NumPy's generator in place of Python's `random`."""
  out = np.empty((n, f), np.int64)
  for i in range(n):
    order = list(range(f))
    k = int(rng.integers(1, f + 1))  # random.randint(1, len(tuple_order)): 1..F inclusive
    new_order = list(order)
    if k != 1:
      shuffled = list(rng.permutation(order))
      id_x = shuffled[:k]
      id_v1 = list(rng.permutation(id_x))
      for j in range(k):
        new_order[id_x[j]] = order[id_v1[j]]
    out[i] = new_order
  return out


def test_subset_shuffle_is_the_released_sampler_with_10_7_percent_identities():
  f, n = 16, 200_000
  exact = P.subset_shuffle_identity_probability(f)
  assert abs(exact - (math.e - 1) / 16) < 1e-12 and round(exact, 4) == 0.1074
  perms = P.subset_shuffle(n, f, np.random.default_rng(0))
  assert perms.shape == (n, f) and perms.dtype == np.int32
  np.testing.assert_array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(f), (n, f)))
  identity = np.mean(np.all(perms == np.arange(f), axis=1))
  sigma = math.sqrt(exact * (1 - exact) / n)
  assert abs(identity - exact) < 5 * sigma, identity  # 10.7 %, measured on 200k draws
  # The same distribution as the loop of the released code: moved frames and degree classes.
  ref = _released_reference(20_000, f, np.random.default_rng(1))
  assert abs(np.mean(np.all(ref == np.arange(f), axis=1)) - exact) < 0.01
  moved = lambda p: np.bincount((p != np.arange(f)).sum(1), minlength=f + 1)
  assert stats.chi2_contingency(np.stack([moved(perms[:20_000]), moved(ref)]) + 1).pvalue > 1e-3
  classes = lambda p: np.bincount(
    P.distance_to_class(P.batch_levenshtein(p, np.arange(f))), minlength=f
  )
  labels = classes(perms[:20_000])
  assert stats.chi2_contingency(np.stack([labels, classes(ref)]) + 1).pvalue > 1e-3
  # Far from uniform: class 0 ~ 10.7 %, the largest degree rare (~0.7 %).
  assert 0.09 < labels[0] / 20_000 < 0.125 and labels[-1] / 20_000 < 0.015


def test_released_sampler_in_shuffle_degree_sampler():
  s = P.ShuffleDegreeSampler(num_frames=16, seed=0, sampler='released')
  assert s.banks is None and s.num_classes == 16
  perms, labels = s.sample(4000, np.random.default_rng(2))
  np.testing.assert_array_equal(
    P.distance_to_class(P.batch_levenshtein(perms, np.arange(16))), labels
  )
  assert abs(np.mean(labels == 0) - P.subset_shuffle_identity_probability(16)) < 0.025
  # Non-uniform: the released code's random.shuffle of all frames, as the paper sampler's SDP*.
  _, star = P.ShuffleDegreeSampler(16, uniform=False, sampler='released').sample(2000)
  assert np.bincount(star, minlength=16)[:5].sum() == 0
  with pytest.raises(ValueError, match="sampler='code'"):
    P.ShuffleDegreeSampler(8, sampler='code')

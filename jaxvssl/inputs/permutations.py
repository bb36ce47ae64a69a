"""Permutation utilities for the input pipeline (NumPy): edit distance, shuffle-degree sampling
and group-shuffled negatives.

Shuffle-degree sampling is CACL's ("Cross-Architecture Self-supervised Video Representation
Learning", Guo et al., CVPR 2022, Sec. 3.3); group-shuffled negatives are SCVRL's ("SCVRL: Shuffled
Contrastive Video Representation Learning", Dorkenwald et al., CVPRW 2022, Sec. 3.1); the method
`scvrl` draws them on device instead (`jaxvssl.objectives.group_shuffle_permutations`). See
docs/input_pipeline.md.
"""

from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence

import numpy as np

# Up to this many frames the banks enumerate all F! permutations (8! = 40320).
_ENUMERATE_MAX_FRAMES = 8
# 'paper': uniform classes from per-class banks (SDP) / uniformly random permutations (SDP*);
# 'released': the authors' released code (`subset_shuffle`; uniformly random permutations for SDP*).
SAMPLERS = ('paper', 'released')


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
  """Levenshtein (insert / delete / substitute, unit costs) distance between integer sequences.

  Every element is ONE symbol (frame index 10 is one symbol, not the string '10').

  Args:
    a, b: 1-D integer sequences.
  Returns:
    int distance.
  """
  a = np.asarray(a).reshape(-1)
  b = np.asarray(b).reshape(-1)
  prev = np.arange(len(b) + 1)
  for i in range(1, len(a) + 1):
    cur = np.empty_like(prev)
    cur[0] = i
    sub = prev[:-1] + (b != a[i - 1])
    dele = prev[1:] + 1
    best = np.minimum(sub, dele)
    # Insertions chain left to right: cur[j] = min(best[j-1], cur[j-1] + 1).
    for j in range(1, len(b) + 1):
      cur[j] = min(best[j - 1], cur[j - 1] + 1)
    prev = cur
  return int(prev[-1])


def batch_levenshtein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Row-wise Levenshtein distances, vectorised over rows (one DP sweep for the whole batch).

  Args:
    a: int [n, La]. b: int [n, Lb] (or [Lb], broadcast to every row).
  Returns:
    int64 [n].
  """
  a = np.atleast_2d(np.asarray(a))
  b = np.asarray(b)
  if b.ndim == 1:
    b = np.broadcast_to(b, (a.shape[0], b.shape[0]))
  n, la = a.shape
  lb = b.shape[1]
  prev = np.broadcast_to(np.arange(lb + 1), (n, lb + 1)).copy()
  for i in range(1, la + 1):
    cur = np.empty_like(prev)
    cur[:, 0] = i
    best = np.minimum(prev[:, :-1] + (b != a[:, i - 1 : i]), prev[:, 1:] + 1)
    for j in range(1, lb + 1):
      cur[:, j] = np.minimum(best[:, j - 1], cur[:, j - 1] + 1)
    prev = cur
  return prev[:, -1]


def distance_to_class(distance: np.ndarray) -> np.ndarray:
  """Shuffle-degree class of a distance to the identity: 0 for d == 0, else d - 1.

  (d == 1 is impossible for a permutation, so F frames give F classes.)
  """
  distance = np.asarray(distance)
  return np.where(distance == 0, 0, distance - 1).astype(np.int32)


def subset_shuffle(n: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
  """The released CACL code's shuffle: k positions, k uniform in 1..F, permuted among themselves.

  `datasets/ucf101.py` of github.com/guoshengcv/CACL (UCF101CACLDataset.__getitem__, lines
  281-296; UCF101SDPDataset with uniform_sdp=True, lines 417-432): `id = random.randint(1, F)`;
  id == 1 keeps the clip; otherwise `id` distinct positions are chosen at random and their frames
  are permuted by a uniformly random permutation of those positions (which may leave some of them
  in place). So the identity has probability `subset_shuffle_identity_probability(F)` (10.7% for
  16 frames), and large degrees are rare: the degrees are NOT uniform.

  Args:
    n: number of permutations. num_frames: F. rng: NumPy generator.
  Returns:
    int32 [n, F]; row i lists source frame indices (the shuffled clip is clip[perm]).
  """
  f = num_frames
  k = rng.integers(1, f + 1, n)  # [n], uniform in 1..F
  # Positions in random order; the first k of each row are the chosen ones.
  order = np.argsort(rng.random((n, f)), axis=1)
  chosen = np.arange(f)[None, :] < k[:, None]  # [n, F] over the ranks
  # A random permutation of the chosen ranks: sort random keys, non-chosen ranks last and fixed.
  keys = np.where(chosen, rng.random((n, f)), 2.0 + np.arange(f)[None, :])
  inner = np.argsort(keys, axis=1)  # chosen ranks permuted among themselves, others in place
  perms = np.broadcast_to(np.arange(f), (n, f)).copy()
  # perm[order[r]] = order[inner[r]] for every rank r (identity on the non-chosen ranks).
  np.put_along_axis(perms, order, np.take_along_axis(order, inner, axis=1), axis=1)
  return perms.astype(np.int32)


def subset_shuffle_identity_probability(num_frames: int) -> float:
  """P(`subset_shuffle` returns the identity) = (1/F) sum_{k=1..F} 1/k! (k=1 is always identity).

  For F = 16: (e - 1)/16 up to 1e-14, i.e. 0.1074 (the "about 10.8%" of docs/methods/cacl.md).
  """
  return sum(1.0 / math.factorial(k) for k in range(1, num_frames + 1)) / num_frames


class ShuffleDegreeSampler:
  """Draws frame permutations with their shuffle-degree label (CACL SDP, Guo et al. CVPR 2022, eq. 5-6).

  label = class of the Levenshtein distance between the identity order 0..F-1 and the permuted
  order (`distance_to_class`), F classes for F frames.

  uniform=True (default): the class is drawn uniformly, then a permutation uniformly from that
  class's bank. Rejection from random permutations cannot reach small distances, so the banks are
  built by permuting k randomly chosen positions for every k = 2..F and bucketing the results by
  their computed distance; every bucket must be non-empty and hold at least `min_unique` distinct
  permutations, otherwise construction fails with a message naming the class.

  uniform=False (the "SDP without uniform sampling" ablation, SDP*): uniformly random
  permutations of all F frames, labelled by their distance. Labels are then heavily skewed to
  large distances (the identity and small degrees essentially never occur). The authors' released
  code is skewed differently (about 10.7% class 0 and 0.7% class 15 for 16 frames); neither is
  uniform, which is what the uniform sampler fixes.

  sampler='released' replaces the uniform sampler by the released code's `subset_shuffle` (what
  that code calls uniform); uniform=False is then the released code's non-uniform sampler, the
  same uniformly random permutations as above. It needs no banks (`banks` is None): the input
  pipeline draws it with `jaxvssl.inputs.views.subset_shuffle_extra`.

  Attributes:
    num_frames: F. num_classes: F.
    banks: int32 [num_classes, bank_size, F], every class has the same bank size so a tf.data
      pipeline can draw (class, row) with stateless random ops. Class 0 holds the identity only.
      None with sampler='released'.
    unique_counts: int [num_classes], distinct permutations found per class (None: 'released').
  """

  def __init__(
    self,
    num_frames: int = 16,
    uniform: bool = True,
    seed: int = 0,
    bank_size: int = 1024,
    candidates_per_k: int = 4096,
    min_unique: int = 16,
    sampler: str = 'paper',
  ):
    if num_frames < 2:
      raise ValueError(f'ShuffleDegreeSampler: num_frames must be >= 2, got {num_frames}')
    if sampler not in SAMPLERS:
      raise ValueError(f'ShuffleDegreeSampler: sampler={sampler!r} must be one of {SAMPLERS}')
    self.num_frames = num_frames
    self.num_classes = num_frames
    self.uniform = uniform
    self.sampler = sampler
    self.bank_size = bank_size
    self._rng = np.random.default_rng(seed)
    self.banks = self.unique_counts = None
    if sampler == 'paper':
      self.banks, self.unique_counts = self._build_banks(
        np.random.default_rng([seed, 1]), candidates_per_k, min_unique
      )

  def _build_banks(self, rng: np.random.Generator, candidates_per_k: int, min_unique: int):
    f = self.num_frames
    identity = np.arange(f)
    if f <= _ENUMERATE_MAX_FRAMES:
      # Small F: every permutation, so the buckets are exact and complete.
      cands = [np.array(list(itertools.permutations(range(f))))]
    else:
      cands = [identity[None]]
    for k in range(2, f + 1 if f > _ENUMERATE_MAX_FRAMES else 2):
      # Choose k positions and permute their contents (random derangements are not forced: a
      # partial shuffle may leave some chosen positions in place, which widens the spread).
      pos = np.argsort(rng.random((candidates_per_k, f)), axis=1)[:, :k]
      shuffled = np.take_along_axis(pos, np.argsort(rng.random((candidates_per_k, k)), 1), 1)
      perms = np.broadcast_to(identity, (candidates_per_k, f)).copy()
      np.put_along_axis(perms, pos, shuffled, axis=1)
      cands.append(perms)
    cands = np.unique(np.concatenate(cands), axis=0)
    exhaustive = f <= _ENUMERATE_MAX_FRAMES
    classes = distance_to_class(batch_levenshtein(cands, identity))
    banks = np.empty((self.num_classes, self.bank_size, f), np.int32)
    counts = np.zeros(self.num_classes, np.int64)
    for c in range(self.num_classes):
      members = cands[classes == c]
      counts[c] = len(members)
      # Exhaustive buckets only need to be non-empty; sampled ones must also be diverse.
      need = 1 if (c == 0 or exhaustive) else min_unique
      if len(members) < need:
        raise ValueError(
          f'ShuffleDegreeSampler(num_frames={f}): class {c} (edit distance '
          f'{0 if c == 0 else c + 1}) has {len(members)} distinct permutations, need >= {need}. '
          + (
            f'No permutation of {f} frames has that distance (all {math.factorial(f)} were '
            'enumerated); use more frames.'
            if exhaustive
            else f'Raise candidates_per_k (now {candidates_per_k}) or lower min_unique.'
          )
        )
      # Use every distinct member when they fit; otherwise a uniform subset. Rows are then cycled
      # to the common bank size, so draws stay (near) uniform over the distinct members.
      if len(members) > self.bank_size:
        members = members[rng.choice(len(members), self.bank_size, replace=False)]
      reps = np.resize(np.arange(len(members)), self.bank_size)
      banks[c] = members[rng.permutation(reps)]
    return banks, counts

  def sample(self, n: int, rng: Optional[np.random.Generator] = None):
    """Draws n permutations and labels.

    Args:
      n: number of samples. rng: optional generator (defaults to the sampler's own stream).
    Returns:
      (perms int32 [n, F], labels int32 [n]); perms[i] lists source frame indices in order.
    """
    rng = self._rng if rng is None else rng
    if self.uniform and self.sampler == 'released':
      perms = subset_shuffle(n, self.num_frames, rng)
      return perms, distance_to_class(batch_levenshtein(perms, np.arange(self.num_frames)))
    if self.uniform:
      labels = rng.integers(0, self.num_classes, n).astype(np.int32)
      rows = rng.integers(0, self.bank_size, n)
      return self.banks[labels, rows], labels
    perms = np.argsort(rng.random((n, self.num_frames)), axis=1).astype(np.int32)
    labels = distance_to_class(batch_levenshtein(perms, np.arange(self.num_frames)))
    return perms, labels


def group_shuffle_negatives(
  num_frames: int = 16,
  group_size: int = 2,
  num_negatives: int = 12,
  rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
  """SCVRL temporal negatives: M distinct non-identity permutations of groups of frames.

  Frames are shuffled in groups of `group_size` consecutive frames (never single frames) so that
  a patch embedding with temporal kernel = stride = group_size never sees a seam inside a token
  (SCVRL, Dorkenwald et al. CVPRW 2022, Sec. 4.1, Table 8e).

  Args:
    num_frames: F, divisible by group_size. group_size: 2 in SCVRL.
    num_negatives: M (N_T = 12 in SCVRL); at most G! - 1 with G = F / group_size.
    rng: NumPy generator.
  Returns:
    int32 [M, F] frame indices: negative m is clip[:, perms[m]].
  """
  rng = np.random.default_rng() if rng is None else rng
  if num_frames % group_size:
    raise ValueError(
      f'group_shuffle_negatives: num_frames={num_frames} is not divisible by '
      f'group_size={group_size}'
    )
  g = num_frames // group_size
  available = math.factorial(g) - 1
  if num_negatives > available:
    raise ValueError(
      f'group_shuffle_negatives: num_negatives={num_negatives} exceeds the '
      f'{available} non-identity permutations of {g} groups'
    )
  identity = np.arange(g)
  chosen: list[np.ndarray] = []
  seen = {tuple(identity)}
  while len(chosen) < num_negatives:
    need = num_negatives - len(chosen)
    for p in np.argsort(rng.random((2 * need + 4, g)), axis=1):
      if tuple(p) not in seen:
        seen.add(tuple(p))
        chosen.append(p)
        if len(chosen) == num_negatives:
          break
  groups = np.stack(chosen)  # [M, G]
  frames = groups[:, :, None] * group_size + np.arange(group_size)  # [M, G, group_size]
  return frames.reshape(num_negatives, num_frames).astype(np.int32)

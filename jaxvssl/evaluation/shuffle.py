"""Shuffle sensitivity (SCVRL Table 2): how much a linear probe loses on temporally shuffled clips.

Protocol: the linear probe trained on ordinary train features (linear_probe.py) is applied, with
no retraining, to (a) the ordinary test features and (b) features of the same test clips whose
frames were permuted in time. Each clip gets its own uniformly random permutation of frame groups
(`group_size` consecutive frames move together; 1 = single frames), never the identity, drawn from
a seeded generator in data set order, so a run is reproducible. Reported: clip- and video-level
top-1 on both, and the drop = original - shuffled (a larger drop = a more temporally sensitive
representation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxvssl.evaluation import linear_probe as lp
from jaxvssl.evaluation.features import EmbedFn
from jaxvssl.evaluation import reports

DEFAULT_GROUP_SIZE = 1
DEFAULT_SEED = 0


def shuffle_frames(
  clips: np.ndarray, rng: np.random.Generator, group_size: int = DEFAULT_GROUP_SIZE
) -> np.ndarray:
  """Permutes the time axis of every clip independently.

  Args:
    clips: `[B, T, H, W, C]`.
    rng: numpy generator (consumed: one permutation per clip).
    group_size: frames per moved group; T must be divisible by it.
  Returns:
    `[B, T, H, W, C]` shuffled copy. With at least 2 groups the identity is never returned.
  """
  clips = np.asarray(clips)
  b, t = clips.shape[:2]
  if group_size < 1 or t % group_size:
    raise ValueError(f'shuffle_frames: T={t} not divisible by group_size={group_size}')
  groups = t // group_size
  out = np.empty_like(clips)
  for i in range(b):
    perm = rng.permutation(groups)
    while groups > 1 and np.array_equal(perm, np.arange(groups)):
      perm = rng.permutation(groups)
    frame_perm = (perm[:, None] * group_size + np.arange(group_size)).reshape(-1)
    out[i] = clips[i, frame_perm]
  return out


def shuffled_embed_fn(
  embed_fn: EmbedFn, seed: int = DEFAULT_SEED, group_size: int = DEFAULT_GROUP_SIZE
) -> EmbedFn:
  """Wraps `embed_fn` so that every clip is temporally shuffled before being embedded."""
  rng = np.random.default_rng(seed)
  return lambda clips: embed_fn(shuffle_frames(clips, rng, group_size))


def shuffle_sensitivity(
  probe: lp.TrainedProbe, test: Mapping[str, np.ndarray], shuffled_test: Mapping[str, np.ndarray]
) -> dict[str, float]:
  """Accuracy of one probe on ordinary vs shuffled test features, and the drop.

  Both dicts must describe the same videos in the same order (checked through ids and labels).
  Returns `shuffle/{clip,video}_top1_original`, `..._shuffled` and `shuffle/{clip,video}_drop`.
  """
  if not np.array_equal(np.asarray(test['labels']), np.asarray(shuffled_test['labels'])):
    raise ValueError(
      'shuffle_sensitivity: test and shuffled_test labels differ (different videos?)'
    )
  if (
    'video_ids' in test
    and 'video_ids' in shuffled_test
    and not np.array_equal(
      np.asarray(test['video_ids']).astype(str), np.asarray(shuffled_test['video_ids']).astype(str)
    )
  ):
    raise ValueError('shuffle_sensitivity: test and shuffled_test video ids differ')
  orig = lp.probe_accuracy(probe, test)
  shuf = lp.probe_accuracy(probe, shuffled_test)
  out = {}
  for level in ('clip', 'video'):
    out[f'shuffle/{level}_top1_original'] = orig[f'{level}_top1']
    out[f'shuffle/{level}_top1_shuffled'] = shuf[f'{level}_top1']
    out[f'shuffle/{level}_drop'] = orig[f'{level}_top1'] - shuf[f'{level}_top1']
  return out


def evaluate_shuffle_sensitivity(
  probe: lp.TrainedProbe,
  test: Mapping[str, np.ndarray],
  shuffled_test: Mapping[str, np.ndarray],
  out_dir: str | os.PathLike | None = None,
  *,
  run_name: str | None = None,
  details: Mapping[str, Any] | None = None,
) -> dict[str, float]:
  """`shuffle_sensitivity` plus results.json / results.md in `out_dir`."""
  metrics = shuffle_sensitivity(probe, test, shuffled_test)
  if out_dir is not None:
    reports.write_results(
      out_dir,
      metrics,
      protocol='shuffle_sensitivity',
      run_name=run_name,
      details={
        'probe_learning_rate': probe.learning_rate,
        'probe_weight_decay': probe.weight_decay,
        **(details or {}),
      },
    )
  return metrics

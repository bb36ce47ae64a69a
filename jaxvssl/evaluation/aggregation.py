"""Clip-level vs video-level accuracy: the one place where clips become videos.

Every action-recognition protocol (linear probe, finetune, shuffle sensitivity) produces per-clip
logits `[V, N, C]` (V videos, N clips per video -- N = clips x spatial crops when several crops
are used, C classes). Two numbers are reported from them and they are NOT interchangeable:

* clip-level top-1: every clip is classified on its own; accuracy over all V * N clips.
* video-level top-1: the softmax probabilities of the N clips of a video are averaged and the
  argmax of that mean is the video's prediction; accuracy over V videos.

Ties in an argmax go to the lower class index (numpy's argmax rule), so results are deterministic.
All functions are pure numpy.
"""

from __future__ import annotations

import numpy as np


def _check_logits(clip_logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  clip_logits = np.asarray(clip_logits, dtype=np.float64)
  labels = np.asarray(labels)
  if clip_logits.ndim != 3:
    raise ValueError(f'clip_logits must be [V, N, C], got shape {clip_logits.shape}')
  if labels.shape != clip_logits.shape[:1]:
    raise ValueError(f'labels must be [V]={clip_logits.shape[:1]}, got shape {labels.shape}')
  return clip_logits, labels.astype(np.int64)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
  """Numerically stable softmax (max subtracted) in float64."""
  logits = np.asarray(logits, dtype=np.float64)
  shifted = logits - logits.max(axis=axis, keepdims=True)
  e = np.exp(shifted)
  return e / e.sum(axis=axis, keepdims=True)


def video_probabilities(clip_logits: np.ndarray) -> np.ndarray:
  """Mean softmax over the clips of each video.

  Args:
    clip_logits: `[V, N, C]` per-clip logits.
  Returns:
    `[V, C]` video class probabilities (each row sums to 1).
  """
  clip_logits = np.asarray(clip_logits)
  if clip_logits.ndim != 3:
    raise ValueError(f'clip_logits must be [V, N, C], got shape {clip_logits.shape}')
  return softmax(clip_logits, axis=-1).mean(axis=1)


def clip_top1(clip_logits: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of the V * N clips whose argmax equals the label of their video."""
  clip_logits, labels = _check_logits(clip_logits, labels)
  pred = clip_logits.argmax(axis=-1)  # [V, N]
  return float((pred == labels[:, None]).mean())


def video_top1(clip_logits: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of the V videos whose mean-softmax prediction equals their label."""
  clip_logits, labels = _check_logits(clip_logits, labels)
  pred = video_probabilities(clip_logits).argmax(axis=-1)  # [V]
  return float((pred == labels).mean())


def clip_and_video_top1(clip_logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """Both accuracies, named the way every report names them."""
  return {
    'clip_top1': clip_top1(clip_logits, labels),
    'video_top1': video_top1(clip_logits, labels),
  }

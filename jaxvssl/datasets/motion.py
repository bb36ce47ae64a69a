"""Per-window motion scores for SCVRL targeted sampling.

SCVRL: "SCVRL: Shuffled Contrastive Video Representation Learning" (Dorkenwald et al., CVPRW 2022)
samples clips where the video moves (method `scvrl`, `sampler='targeted'`); the scores are stored
with every data set. See docs/data.md.

A video's motion is measured where it is visible to a clip sampler: on the
boundaries of moving regions. For every pair of consecutive frames we compute
dense optical flow (OpenCV Farneback), take the magnitude of the flow, and apply
a Sobel filter to it ("flow edges"): a uniformly translating background or a
camera pan has a nearly constant flow field and thus small flow edges, while an
object moving against its surroundings has large ones. A frame's score is the
median of its ``top_k`` largest flow-edge values; a window's score is the median
of its frames' scores. Scores are computed once, when a data set is built, and
stored with the video (feature ``motion_scores``, one float per window).

Frame / window conventions (shared with the input pipeline through
``window_bounds``):

* The flow between frames ``t - 1`` and ``t`` is attributed to frame ``t``;
  frame 0 has no predecessor and copies the score of frame 1. A single-frame
  video scores 0.
* ``frames_per_window = fps * window_seconds`` (may be fractional, e.g. 29.97
  fps). ``num_windows = max(1, floor(T / frames_per_window))``. Window ``i``
  covers frames ``[floor(i * L), floor((i + 1) * L))`` with ``L =
  frames_per_window``, except the LAST window, which extends to ``T``: the
  partial window at the end (fewer than ``L`` frames) is merged into the last
  full window, so every frame counts and no window is shorter than one second.
  A video shorter than one window has a single window with all its frames.

Everything here is deterministic: NumPy and OpenCV only, no randomness.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class FarnebackParams:
  """Arguments of ``cv2.calcOpticalFlowFarneback`` (OpenCV's documented defaults).

  Attributes:
    pyr_scale: image scale between pyramid levels (< 1).
    levels: number of pyramid levels (1 = no pyramid).
    winsize: averaging window size; larger is more robust to noise, blurrier.
    iterations: iterations per pyramid level.
    poly_n: pixel neighbourhood of the polynomial expansion (5 or 7).
    poly_sigma: Gaussian std of the polynomial expansion (1.1 for 5, 1.5 for 7).
  """

  pyr_scale: float = 0.5
  levels: int = 3
  winsize: int = 15
  iterations: int = 3
  poly_n: int = 5
  poly_sigma: float = 1.2


DEFAULT_TOP_K = 4000
DEFAULT_SOBEL_KSIZE = 3
# SCVRL's k = 4000 refers to frames of about this size (short side 128 at 4:3,
# the size the project's real-data builders store). On much smaller frames the
# top 4000 values are nearly ALL pixels, and their median is ~0 for any video
# whose moving objects cover a small part of the frame: see ``scaled_top_k``.
REFERENCE_PIXELS = 128 * 171


def scaled_top_k(
  height: int, width: int, top_k: int = DEFAULT_TOP_K, reference_pixels: int = REFERENCE_PIXELS
) -> int:
  """``top_k`` keeping the same FRACTION of pixels as ``top_k`` on the reference.

  E.g. 4000 of 128x171 pixels (18%) becomes 749 on 64x64 frames.
  """
  return max(1, int(round(top_k * height * width / reference_pixels)))


def _check_frames(frames: np.ndarray) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'motion scores: frames must be [T, H, W, 3], got shape {frames.shape}')
  if frames.dtype != np.uint8:
    raise ValueError(f'motion scores: frames must be uint8, got dtype {frames.dtype}')
  if frames.shape[0] < 1:
    raise ValueError('motion scores: the video has no frames (T = 0)')
  return frames


def flow_edges(
  prev_gray: np.ndarray,
  next_gray: np.ndarray,
  farneback: FarnebackParams = FarnebackParams(),
  sobel_ksize: int = DEFAULT_SOBEL_KSIZE,
) -> np.ndarray:
  """Sobel gradient magnitude of the optical-flow magnitude between two frames.

  Args:
    prev_gray: uint8 [H, W] grayscale frame t - 1.
    next_gray: uint8 [H, W] grayscale frame t.
    farneback: optical-flow parameters.
    sobel_ksize: Sobel aperture (1, 3, 5 or 7).

  Returns:
    float32 [H, W] flow-edge map (pixels per frame per pixel).
  """
  flow = cv2.calcOpticalFlowFarneback(
    prev_gray,
    next_gray,
    None,
    farneback.pyr_scale,
    farneback.levels,
    farneback.winsize,
    farneback.iterations,
    farneback.poly_n,
    farneback.poly_sigma,
    0,
  )
  magnitude = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2).astype(np.float32)
  # Replicated borders: the frame edge itself is not a motion boundary.
  gx = cv2.Sobel(magnitude, cv2.CV_32F, 1, 0, ksize=sobel_ksize, borderType=cv2.BORDER_REPLICATE)
  gy = cv2.Sobel(magnitude, cv2.CV_32F, 0, 1, ksize=sobel_ksize, borderType=cv2.BORDER_REPLICATE)
  return np.sqrt(gx * gx + gy * gy)


def _median_of_top_k(values: np.ndarray, top_k: int) -> float:
  flat = values.reshape(-1)
  k = min(top_k, flat.size)
  # np.partition puts the k largest values (in any order) in the last k slots.
  top = np.partition(flat, flat.size - k)[flat.size - k :]
  return float(np.median(top))


def frame_motion_scores(
  frames: np.ndarray,
  top_k: int = DEFAULT_TOP_K,
  farneback: FarnebackParams = FarnebackParams(),
  sobel_ksize: int = DEFAULT_SOBEL_KSIZE,
) -> np.ndarray:
  """Per-frame motion score: median of the ``top_k`` largest flow edges.

  Args:
    frames: uint8 [T, H, W, 3] RGB video.
    top_k: number of largest flow-edge values per frame whose median is the
      score; clipped to ``H * W`` (so small test videos use all pixels).
    farneback: optical-flow parameters.
    sobel_ksize: Sobel aperture applied to the flow magnitude.

  Returns:
    float32 [T] scores; score[t] measures the motion from frame t - 1 to t,
    score[0] == score[1] (0 for a single-frame video).
  """
  frames = _check_frames(frames)
  if top_k < 1:
    raise ValueError(f'motion scores: top_k must be >= 1, got {top_k}')
  num_frames = frames.shape[0]
  scores = np.zeros([num_frames], np.float32)
  if num_frames == 1:
    return scores
  gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
  for t in range(1, num_frames):
    edges = flow_edges(gray[t - 1], gray[t], farneback, sobel_ksize)
    scores[t] = _median_of_top_k(edges, top_k)
  scores[0] = scores[1]
  return scores


def num_motion_windows(num_frames: int, fps: float, window_seconds: float = 1.0) -> int:
  """``max(1, floor(num_frames / (fps * window_seconds)))``."""
  frames_per_window = _frames_per_window(fps, window_seconds)
  # The small epsilon keeps e.g. 30 frames / (29.999999 fps) at one window
  # despite floating-point rounding of fractional frame rates.
  return max(1, int(np.floor(num_frames / frames_per_window + 1e-6)))


def _frames_per_window(fps: float, window_seconds: float) -> float:
  if not fps > 0:
    raise ValueError(f'motion scores: fps must be > 0, got {fps}')
  if not window_seconds > 0:
    raise ValueError(f'motion scores: window_seconds must be > 0, got {window_seconds}')
  return float(fps) * float(window_seconds)


def window_bounds(num_frames: int, fps: float, window_seconds: float = 1.0) -> np.ndarray:
  """Frame ranges of the motion windows (see the module docstring).

  Args:
    num_frames: T, number of frames of the video (>= 1).
    fps: frame rate of the video.
    window_seconds: window length in seconds.

  Returns:
    int32 [num_windows, 2]: row i is ``[start, end)`` of window i. The windows
    tile ``[0, T)`` without gaps; the last one absorbs the partial remainder.
  """
  if num_frames < 1:
    raise ValueError(f'motion scores: num_frames must be >= 1, got {num_frames}')
  length = _frames_per_window(fps, window_seconds)
  count = num_motion_windows(num_frames, fps, window_seconds)
  starts = np.floor(np.arange(count) * length + 1e-6).astype(np.int64)
  starts = np.minimum(starts, num_frames - 1)
  ends = np.append(starts[1:], num_frames)
  return np.stack([starts, ends], axis=1).astype(np.int32)


def window_motion_scores(
  frames: np.ndarray,
  fps: float,
  window_seconds: float = 1.0,
  top_k: int = DEFAULT_TOP_K,
  farneback: FarnebackParams = FarnebackParams(),
  sobel_ksize: int = DEFAULT_SOBEL_KSIZE,
) -> np.ndarray:
  """Motion score per window: median of the frame scores inside it.

  Args:
    frames: uint8 [T, H, W, 3] RGB video.
    fps: frame rate of ``frames``.
    window_seconds: window length in seconds (SCVRL: 1 second).
    top_k: see ``frame_motion_scores``.
    farneback: optical-flow parameters.
    sobel_ksize: Sobel aperture applied to the flow magnitude.

  Returns:
    float32 [num_windows] with ``num_windows = max(1, floor(T / (fps *
    window_seconds)))``; the last window includes the trailing partial window.
  """
  frames = _check_frames(frames)
  per_frame = frame_motion_scores(frames, top_k, farneback, sobel_ksize)
  bounds = window_bounds(frames.shape[0], fps, window_seconds)
  return np.asarray([np.median(per_frame[s:e]) for s, e in bounds], np.float32)

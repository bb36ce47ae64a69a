"""Figures: loss curves, R@k curves, a retrieval gallery and a 2-D embedding plot (PNG).

Figures are built with `matplotlib.figure.Figure` on the Agg canvas directly (no pyplot, no global
backend switch), so plotting is safe in headless jobs and threads.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from etils import epath
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxvssl import workdir as workdir_lib
from jaxvssl.evaluation.retrieval import video_embeddings

DPI = 100
HIT_COLOR = 'tab:green'
MISS_COLOR = 'tab:red'
BORDER_WIDTH = 4


def _save(fig: Figure, out_path: str | os.PathLike) -> str:
  """Writes `fig` as a PNG to `out_path` (local or `gs://`: matplotlib writes to a file object)."""
  path = epath.Path(out_path)
  path.parent.mkdir(parents=True, exist_ok=True)
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=DPI, format='png')
  path.write_bytes(buffer.getvalue())
  return os.fspath(out_path)


def read_metrics_jsonl(path: str | os.PathLike) -> list[dict]:
  """Rows of a metrics.jsonl (one JSON object per line, each with 'step'); blank lines skipped."""
  rows = []
  with epath.Path(path).open() as f:
    for n, line in enumerate(f, 1):
      if line.strip():
        row = json.loads(line)
        if 'step' not in row:
          raise ValueError(f"{path}:{n}: row without 'step'")
        rows.append(row)
  return rows


def plot_loss_curves(
  metrics_files: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
  out_path: str | os.PathLike,
  keys: Sequence[str] | None = None,
) -> str:
  """One panel per scalar key, one line per run, x = step.

  Args:
    metrics_files: paths (run name = parent directory) or {run name: path}.
    keys: scalar keys to plot; default every key containing 'loss' found in any file.
  """
  if not isinstance(metrics_files, Mapping):
    metrics_files = {workdir_lib.resolve(p).parent.name or str(p): p for p in metrics_files}
  runs = {name: read_metrics_jsonl(p) for name, p in metrics_files.items()}
  if keys is None:
    keys = sorted(
      {
        k
        for rows in runs.values()
        for r in rows
        for k, v in r.items()
        if 'loss' in k and isinstance(v, (int, float))
      }
    )
  if not keys:
    raise ValueError(f'plot_loss_curves: no loss keys in {list(metrics_files.values())}')
  fig = Figure(figsize=(5 * len(keys), 3.5))
  for i, key in enumerate(keys):
    ax = fig.add_subplot(1, len(keys), i + 1)
    for name, rows in runs.items():
      pts = [(r['step'], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
      if pts:
        ax.plot(*zip(*pts), label=name)
    ax.set_title(key)
    ax.set_xlabel('step')
    ax.legend(fontsize=7)
  fig.tight_layout()
  return _save(fig, out_path)


def plot_recall_curves(
  recalls: Mapping[str, Mapping[int | str, float]], out_path: str | os.PathLike
) -> str:
  """R@k (percent) vs k, one line per run. `recalls`: {run: {k: fraction}} (keys int or 'R@k')."""
  fig = Figure(figsize=(5, 3.5))
  ax = fig.add_subplot(1, 1, 1)
  for name, rec in recalls.items():
    pts = sorted((int(str(k).split('@')[-1]), 100.0 * v) for k, v in rec.items())
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', label=name)
  ax.set_xscale('log')
  ax.set_xlabel('k')
  ax.set_ylabel('R@k (%)')
  ax.legend(fontsize=7)
  fig.tight_layout()
  return _save(fig, out_path)


def _to_uint8_image(frame: np.ndarray) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:  # normalised float frames: rescale to the frame's own range
    lo, hi = float(frame.min()), float(frame.max())
    frame = ((frame - lo) / max(hi - lo, 1e-8) * 255).astype(np.uint8)
  return frame


def plot_retrieval_gallery(
  query_frames: Sequence[np.ndarray],
  query_labels: Sequence[int],
  neighbour_frames: Sequence[Sequence[np.ndarray]],
  neighbour_labels: Sequence[Sequence[int]],
  out_path: str | os.PathLike,
  *,
  class_names: Sequence[str] | None = None,
  frames_shown: int = 3,
) -> str:
  """Rows = queries: the query clip's frames, then each neighbour's first frame.

  Args:
    query_frames: per query, `[T, H, W, 3]` frames (uint8 or float).
    query_labels: per query, its class.
    neighbour_frames: per query, a list (e.g. top-3) of `[T, H, W, 3]` neighbour clips.
    neighbour_labels: their classes; a neighbour with the query's class gets a green border
      (hit), otherwise red (miss).
    frames_shown: query frames drawn (evenly spaced over T).
  """
  name = (lambda c: class_names[c]) if class_names is not None else str
  nq = len(query_frames)
  nn_ = max(len(n) for n in neighbour_frames)
  cols = frames_shown + nn_
  fig = Figure(figsize=(1.6 * cols, 1.8 * nq))
  for r in range(nq):
    q = np.asarray(query_frames[r])
    for j, t in enumerate(np.linspace(0, q.shape[0] - 1, frames_shown).round().astype(int)):
      ax = fig.add_subplot(nq, cols, r * cols + j + 1)
      ax.imshow(_to_uint8_image(q[t]))
      ax.set_xticks([])
      ax.set_yticks([])
      ax.set_title(f'query: {name(int(query_labels[r]))}' if j == 0 else f't={t}', fontsize=7)
    for j, (clip, lab) in enumerate(zip(neighbour_frames[r], neighbour_labels[r])):
      ax = fig.add_subplot(nq, cols, r * cols + frames_shown + j + 1)
      ax.imshow(_to_uint8_image(np.asarray(clip)[0]))
      ax.set_xticks([])
      ax.set_yticks([])
      color = HIT_COLOR if int(lab) == int(query_labels[r]) else MISS_COLOR
      for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(BORDER_WIDTH)
      ax.set_title(f'#{j + 1}: {name(int(lab))}', fontsize=7, color=color)
  fig.tight_layout()
  return _save(fig, out_path)


def pca_2d(x: np.ndarray) -> np.ndarray:
  """Projection of `[V, D]` onto its first two principal components (SVD of centred data)."""
  x = np.asarray(x, np.float64)
  x = x - x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  proj = x @ vt[:2].T
  if proj.shape[1] < 2:
    proj = np.pad(proj, ((0, 0), (0, 2 - proj.shape[1])))
  return proj


def plot_embedding(
  features: np.ndarray,
  labels: np.ndarray,
  out_path: str | os.PathLike,
  *,
  method: str = 'pca',
  class_names: Sequence[str] | None = None,
  seed: int = 0,
) -> str:
  """2-D scatter of video embeddings coloured by class.

  Args:
    features: `[V, D]` or `[V, N, D]` (mean-pooled over clips and L2-normalised first, as in
      retrieval).
    method: 'pca' (numpy, default) or 'tsne' (needs scikit-learn, which jaxvssl does not depend
      on; an ImportError says so).
  """
  x = video_embeddings(features)
  labels = np.asarray(labels).reshape(-1)
  if method == 'pca':
    xy = pca_2d(x)
  elif method == 'tsne':
    try:
      from sklearn.manifold import TSNE
    except ImportError as e:
      raise ImportError(
        "plot_embedding(method='tsne') needs scikit-learn, not a jaxvssl "
        "dependency; use method='pca' or install scikit-learn"
      ) from e
    xy = TSNE(
      n_components=2,
      random_state=seed,
      init='pca',
      perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)),
    ).fit_transform(x)
  else:
    raise ValueError(f"plot_embedding: method={method!r}; expected 'pca' or 'tsne'")
  fig = Figure(figsize=(5, 5))
  ax = fig.add_subplot(1, 1, 1)
  classes = np.unique(labels)
  cmap = matplotlib.colormaps['tab20' if len(classes) <= 20 else 'viridis']
  for i, c in enumerate(classes):
    m = labels == c
    ax.scatter(
      xy[m, 0],
      xy[m, 1],
      s=8,
      color=cmap(i / max(len(classes) - 1, 1)),
      label=class_names[c] if class_names is not None else str(c),
    )
  if len(classes) <= 20:
    ax.legend(fontsize=6, markerscale=2)
  ax.set_title(f'embedding ({method})')
  fig.tight_layout()
  return _save(fig, out_path)

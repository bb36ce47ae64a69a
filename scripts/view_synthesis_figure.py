"""Pictures of a trained view_synthesis stage: originals, synthetic views and estimated flow (PNG).

For a few test videos (one center-cropped clip each, the run's clip length and stride), the rows
are: the original frames, G's synthetic view (the decoded latent mean, the view rate_order's keys
are samples around), the flow O estimates on the original and on the synthetic view (colour =
direction, brightness = length, scaled to the largest flow of the figure; frame t's flow goes
from frame t to t + 1, the last frame has none).

  python scripts/view_synthesis_figure.py --workdir runs/view_synthesis/tiny \
    --out docs/methods/rate_order_view_synthesis.png [--videos 3] [--frames 6] [--data_dir D]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def flow_to_rgb(flow: np.ndarray, max_length: float) -> np.ndarray:
  """`[..., 2]` flow -> `[..., 3]` RGB in [0, 1]: hue = direction, value = length / max_length."""
  from matplotlib.colors import hsv_to_rgb  # pylint: disable=g-import-not-at-top

  dx, dy = flow[..., 0], flow[..., 1]
  hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
  value = np.clip(np.hypot(dx, dy) / max(max_length, 1e-6), 0.0, 1.0)
  return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], axis=-1))


def render(rows: list[tuple[str, np.ndarray]], out: str, title: str, dpi: int = 80) -> str:
  """A grid: one labelled row per (name, images [F, H, W, 3] in [0, 1])."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  cols = max(len(images) for _, images in rows)
  fig = Figure(figsize=(1.0 * cols + 1.6, 1.0 * len(rows) + 0.5))
  FigureCanvasAgg(fig)
  grid = fig.add_gridspec(len(rows), cols, left=0.2, right=0.99, top=0.93, bottom=0.01)
  for r, (name, images) in enumerate(rows):
    for c in range(cols):
      ax = fig.add_subplot(grid[r, c])
      ax.set_xticks([])
      ax.set_yticks([])
      if c < len(images):
        ax.imshow(np.clip(images[c], 0.0, 1.0), interpolation='nearest')
      else:
        ax.axis('off')
      if c == 0:
        ax.set_ylabel(name, rotation=0, ha='right', va='center', fontsize=7)
  fig.suptitle(title, fontsize=8)
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=dpi, format='png')
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'wb') as f:
    f.write(buffer.getvalue())
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='a view_synthesis run directory')
  parser.add_argument('--out', required=True, help='PNG path')
  parser.add_argument('--videos', type=int, default=3)
  parser.add_argument('--frames', type=int, default=6, help='frames shown per clip')
  parser.add_argument('--data_dir', default=None, help="overrides the run's data.data_dir")
  parser.add_argument('--split', default='test')
  parser.add_argument('--step', type=int, default=None, help='checkpoint (default: latest)')
  args = parser.parse_args(argv)

  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxvssl import runs  # pylint: disable=g-import-not-at-top
  from jaxvssl.inputs import pipeline  # pylint: disable=g-import-not-at-top

  run = runs.load_run(args.workdir, args.step)
  if run.config.method != 'view_synthesis':
    raise SystemExit(f'{args.workdir} is a {run.config.method!r} run, not a view_synthesis run')
  data = run.config.data.copy_and_resolve_references()
  data.unlock()
  if args.data_dir:
    data.data_dir = args.data_dir
  ds = pipeline.make_eval_dataset(data, args.split, batch_size=args.videos, num_clips=1)
  batch = next(iter(ds.take(1).as_numpy_iterator()))
  clips = jnp.asarray(batch['clips'][:, 0])  # [V, T, S, S, 3]
  method, params = run.method, run.params
  synthetic, _, _ = jax.jit(lambda p, x: method.synthesize(p, x, sample=False))(params, clips)
  flow = jax.jit(method.flow)(params['flow'], clips)
  flow_s = jax.jit(method.flow)(params['flow'], synthetic)
  mean, std = np.asarray(data.mean), np.asarray(data.std)
  pixels = lambda x: np.asarray(x) * std + mean
  shown = min(args.frames, clips.shape[1])
  max_length = float(np.percentile(np.hypot(*np.moveaxis(np.asarray(flow), -1, 0)), 99.5))
  rows = []
  for v in range(clips.shape[0]):
    label = int(batch['label'][v])
    rows.append((f'video {v} (class {label})\noriginal', pixels(clips[v, :shown])))
    rows.append(('synthetic\nG(x)', pixels(synthetic[v, :shown])))
    rows.append(('flow O(x)', flow_to_rgb(np.asarray(flow[v, : shown - 1]), max_length)))
    rows.append(('flow O(G(x))', flow_to_rgb(np.asarray(flow_s[v, : shown - 1]), max_length)))
  title = (
    f'{os.path.basename(os.path.normpath(args.workdir))}, step {run.step}: '
    f'{data.name} {args.split}, {clips.shape[1]} frames at stride {data.stride}; '
    f'flow brightness = length / {max_length:.2f} px'
  )
  render(rows, args.out, title)
  stats = {
    'out': args.out,
    'bytes': os.path.getsize(args.out),
    'step': run.step,
    'mean_abs_difference_synthetic_vs_original': float(np.mean(np.abs(synthetic - clips))),
    'flow_length_mean_px': float(np.mean(np.hypot(*np.moveaxis(np.asarray(flow), -1, 0)))),
    'flow_length_p99_5_px': max_length,
    'flow_error_synthetic_vs_original_px': float(
      np.mean(np.hypot(*np.moveaxis(np.asarray(flow_s - flow), -1, 0)))
    ),
  }
  print(json.dumps(stats, indent=1))
  return 0


if __name__ == '__main__':
  sys.exit(main())

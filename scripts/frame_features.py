"""What CACL's transformer T is given: statistics of a `frames` run's per-frame features.

T reads every frame of a clip through the frozen 2D encoder of a `frames` run
(`configs/frames.py`). If those features hardly differ between videos, or between the frames of
one video, T has nothing to contrast and a constant output is all it can learn. This script
embeds the evaluation clips of the run's data set frame by frame (`[V, N, T, F]`) and reports:

  cos_other_video   mean cosine between two different videos' features at the same frame index
  cos_other_frame   mean cosine between two different frames of the same clip
  linear probes     class top-1 (clip and video, the evaluation protocol's probe) on
                    mean   the time-averaged feature `[F]` (what retrieval of a frames run uses)
                    concat the T frame features in order `[T * F]` (order-aware: motion is there
                           only if positions or poses move the features)
                    diff   consecutive differences in order `[(T - 1) * F]`

Usage (a finished frames run, e.g. the first stage of `jaxvssl ablate configs/ablations/...`):

  python scripts/frame_features.py --workdir runs/frames_tiny [--random_init] [--data_dir ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxvssl import runs  # noqa: E402
from jaxvssl.evaluation import linear_probe  # noqa: E402
from jaxvssl.inputs import pipeline  # noqa: E402


def frame_features(encode, config, split: str) -> dict[str, np.ndarray]:
  """`{'features': [V, N, T, F], 'labels': [V]}` of every evaluation clip of `split`."""
  e = config.evaluation
  dataset = pipeline.make_eval_dataset(
    config.data,
    split,
    batch_size=e.batch_size,
    num_clips=e.num_clips,
    num_frames=config.data.num_frames,
    stride=config.data.stride,
  )
  feats, labels = [], []
  for batch in dataset.as_numpy_iterator():
    valid = batch['valid'].astype(bool)
    clips = batch['clips'][valid]  # [B, N, T, H, W, C]
    flat = clips.reshape((-1,) + clips.shape[3:])
    out = np.asarray(encode(flat), np.float32)
    feats.append(out.reshape(clips.shape[:3] + (-1,)))
    labels.append(batch['label'][valid])
  return {'features': np.concatenate(feats), 'labels': np.concatenate(labels).astype(np.int32)}


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_statistics(features: np.ndarray) -> dict[str, float]:
  """features `[V, N, T, F]` -> mean cosines across videos and across frames (first clip)."""
  z = _unit(features[:, 0])  # [V, T, F]
  v, t = z.shape[:2]
  across_videos = np.einsum('atf,btf->tab', z, z)  # [T, V, V]
  off = ~np.eye(v, dtype=bool)
  across_frames = np.einsum('vaf,vbf->vab', z, z)  # [V, T, T]
  off_t = ~np.eye(t, dtype=bool)
  return {
    'cos_other_video': float(across_videos[:, off].mean()),
    'cos_other_frame': float(across_frames[:, off_t].mean()),
  }


def probes(train: dict, test: dict) -> dict[str, dict[str, float]]:
  views = {
    'mean': lambda f: f.mean(axis=2),
    'concat': lambda f: f.reshape(f.shape[:2] + (-1,)),
    'diff': lambda f: np.diff(f, axis=2).reshape(f.shape[:2] + (-1,)),
  }
  out = {}
  for name, view in views.items():
    metrics, _ = linear_probe.evaluate_linear_probe(
      {'features': view(train['features']), 'labels': train['labels']},
      {'features': view(test['features']), 'labels': test['labels']},
    )
    out[name] = {k.split('/')[-1]: round(100 * v, 1) for k, v in metrics.items()}
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='a finished frames run')
  parser.add_argument('--random_init', action='store_true', help='the encoder at random init')
  parser.add_argument('--data_dir', default=None, help="override the run's config.data.data_dir")
  args = parser.parse_args(argv)
  run = runs.load_run(args.workdir)
  config = run.config
  if config.method != 'frames':
    print(f'{args.workdir}: a {config.method!r} run, not a frames run', file=sys.stderr)
    return 2
  if args.data_dir:
    config.data.data_dir = args.data_dir
  encoder = run.method.frame_encoder()
  variables = run.method.frame_encoder_variables(run.params, run.state)
  if args.random_init:
    size = config.data.crop_size
    variables = encoder.init(jax.random.key(config.seed), np.zeros((1, size, size, 3), np.float32))
  encode = jax.jit(lambda x: encoder.apply(variables, x, train=False))
  train = frame_features(encode, config, config.data.train_split)
  test = frame_features(encode, config, config.data.eval_split)
  report = {
    'workdir': args.workdir,
    'encoder': 'random init' if args.random_init else f'checkpoint step {run.step}',
    'features': list(test['features'].shape),
    **cosine_statistics(test['features']),
    'linear_probe': probes(train, test),
  }
  print(json.dumps(report, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())

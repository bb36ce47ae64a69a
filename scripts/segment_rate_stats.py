"""The realised distribution of rate_order's segment sampling rates (jaxvssl/inputs/segments.py).

For each rate range and rate draw, samples many clip layouts on videos of the given length and
prints the mean rate, the fraction of segments at each rate and the total variation distance to
the uniform distribution on the range (0: exactly uniform). It shows what a config's rate range
becomes on a data set's videos, e.g. on synthetic_motion's 48-frame videos:

  python scripts/segment_rate_stats.py --video_length 48 --clip_length 8 --min_length 2 \
      --length_multiple 2
  python scripts/segment_rate_stats.py --video_length 48 --clip_length 16 --min_length 3

`--impl tf` draws with the tf.data sampler (`sample_segments_tf`) instead of the NumPy one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxvssl.inputs import segments  # noqa: E402


def draw_rates(
  impl: str,
  num: int,
  seed: int,
  *,
  video_length: int,
  clip_length: int,
  num_segments: int,
  rate_range: tuple[int, int],
  min_length: int,
  rate_draw: str,
  length_multiple: int = 1,
) -> np.ndarray:
  """int [num, num_segments]: the rates of `num` sampled clips (input order)."""
  kwargs = dict(
    clip_length=clip_length,
    num_segments=num_segments,
    rate_range=rate_range,
    min_segment_length=min_length,
    rate_draw=rate_draw,
    length_multiple=length_multiple,
  )
  if impl == 'numpy':
    rng = np.random.default_rng(seed)
    return np.stack(
      [segments.sample_segments(rng, video_length, **kwargs).rates for _ in range(num)]
    )
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  ds = (
    tf.data.Dataset.range(num)
    .map(lambda i: segments.sample_segments_tf(tf.stack([i, seed]), video_length, **kwargs))
    .map(lambda out: out['rates'])
    .batch(num)
  )
  return next(iter(ds)).numpy()


def summary(rates: np.ndarray, rate_range: tuple[int, int]) -> dict:
  lo, hi = rate_range
  values = np.arange(lo, hi + 1)
  freq = np.array([np.mean(rates == v) for v in values])
  return {
    'mean': round(float(rates.mean()), 3),
    'uniform_mean': (lo + hi) / 2,
    'tv_from_uniform': round(0.5 * float(np.abs(freq - 1 / len(values)).sum()), 3),
    'fractions': {int(v): round(float(f), 3) for v, f in zip(values, freq)},
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--video_length', type=int, default=48)
  parser.add_argument('--clip_length', type=int, default=16)
  parser.add_argument('--num_segments', type=int, default=3)
  parser.add_argument('--min_length', type=int, default=3)
  parser.add_argument('--length_multiple', type=int, default=1)
  parser.add_argument('--ranges', default='4,6,8,10', help='rate_max values, rate_min = 1')
  parser.add_argument('--draws', default='sequential,first_fit')
  parser.add_argument('--impl', choices=('numpy', 'tf'), default='numpy')
  parser.add_argument('--samples', type=int, default=20_000)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  report = {
    'video_length': args.video_length,
    'clip_length': args.clip_length,
    'num_segments': args.num_segments,
    'min_segment_length': args.min_length,
    'length_multiple': args.length_multiple,
    'samples': args.samples,
    'impl': args.impl,
  }
  for draw in args.draws.split(','):
    for hi in (int(h) for h in args.ranges.split(',')):
      rates = draw_rates(
        args.impl,
        args.samples,
        args.seed,
        video_length=args.video_length,
        clip_length=args.clip_length,
        num_segments=args.num_segments,
        rate_range=(1, hi),
        min_length=args.min_length,
        rate_draw=draw,
        length_multiple=args.length_multiple,
      )
      report[f'{draw} [1,{hi}]'] = summary(rates, (1, hi))
  print(json.dumps(report, indent=1))
  return 0


if __name__ == '__main__':
  sys.exit(main())

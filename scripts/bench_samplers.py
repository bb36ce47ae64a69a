"""Measures the throughput of the input-pipeline samplers on this machine.

  python scripts/bench_samplers.py [--seconds 2] [--batch 64]

Prints samples/s for ShuffleDegreeSampler (uniform banks and the non-uniform ablation, which
computes edit distances on the fly), the NumPy segment sampler, and the TF segment sampler run
inside tf.data (map + batch).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from jaxvssl.inputs.permutations import ShuffleDegreeSampler  # pylint: disable=g-import-not-at-top
from jaxvssl.inputs.segments import sample_segments, sample_segments_tf  # pylint: disable=g-import-not-at-top


def _rate(fn, samples_per_call: int, seconds: float) -> float:
  fn()  # warm-up (tf.data graph building, caches)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    fn()
    n += samples_per_call
  return n / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seconds', type=float, default=2.0, help='time per measurement')
  parser.add_argument('--batch', type=int, default=64, help='samples per sampler call')
  parser.add_argument('--num_frames', type=int, default=16)
  args = parser.parse_args()
  print(f'cpu count: {os.cpu_count()}, load average: {os.getloadavg()}')

  start = time.perf_counter()
  uniform = ShuffleDegreeSampler(num_frames=args.num_frames, uniform=True, seed=0)
  print(
    f'ShuffleDegreeSampler(num_frames={args.num_frames}) bank construction: '
    f'{time.perf_counter() - start:.2f} s, banks {uniform.banks.shape}'
  )
  skewed = ShuffleDegreeSampler(num_frames=args.num_frames, uniform=False, seed=0)
  for name, sampler in (('uniform', uniform), ('non-uniform (SDP*)', skewed)):
    r = _rate(lambda s=sampler: s.sample(args.batch), args.batch, args.seconds)
    print(f'ShuffleDegreeSampler {name}: {r:,.0f} samples/s (batch {args.batch})')

  rng = np.random.default_rng(0)
  r = _rate(lambda: sample_segments(rng, 300, 16, 3, (1, 8)), 1, args.seconds)
  print(f'sample_segments (NumPy, n=3, rates 1-8, 300-frame video): {r:,.0f} samples/s')

  ds = (
    tf.data.Dataset.range(10**9)
    .map(
      lambda i: sample_segments_tf(tf.stack([i, 0]), 300, 16, 3, (1, 8)),
      num_parallel_calls=tf.data.AUTOTUNE,
    )
    .batch(args.batch)
    .prefetch(2)
  )
  it = iter(ds)
  r = _rate(lambda: next(it), args.batch, args.seconds)
  print(f'sample_segments_tf in tf.data (map AUTOTUNE + batch {args.batch}): {r:,.0f} samples/s')


if __name__ == '__main__':
  main()

"""How far SCVRL's targeted sampling moves clips on a data set: softmax(motion / beta) vs uniform.

For every video of a split, the window probabilities p = softmax(motion_scores / beta) (what
`ops.targeted_start` draws from) are compared with the uniform choice (beta = inf) by the total
variation distance TV = 1/2 sum |p - 1/W|: the fraction of clips whose window differs from
uniform sampling. A data set whose TV is near 0 cannot tell SCVRL's Table 8a rows apart.

  python scripts/targeted_sampling_stats.py --data synthetic_motion/default --data_dir data/tfds
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxvssl.evaluation.aggregation import softmax  # noqa: E402


def total_variation_from_uniform(scores: np.ndarray, beta: float) -> float:
  """TV distance between softmax(scores / beta) and uniform over the windows."""
  p = softmax(np.asarray(scores, np.float64) / beta)
  return 0.5 * float(np.abs(p - 1.0 / len(p)).sum())


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data', default='synthetic_motion/default', help='TFDS name/config')
  parser.add_argument('--data_dir', default='data/tfds')
  parser.add_argument('--split', default='train')
  parser.add_argument('--betas', default='3,5', help='comma-separated temperatures')
  args = parser.parse_args(argv)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(args.data, data_dir=args.data_dir)
  ds = builder.as_dataset(args.split, decoders={'video': tfds.decode.SkipDecoding()})
  scores = [
    ex['motion_scores']
    for ex in tfds.as_numpy(ds.map(lambda e: {'motion_scores': e['motion_scores']}))
  ]
  report = {
    'data': f'{args.data} {args.split}',
    'videos': len(scores),
    'windows_per_video': float(np.mean([len(s) for s in scores])),
    'score_spread_within_video': float(np.mean([np.ptp(s) for s in scores if len(s)])),
  }
  for beta in (float(b) for b in args.betas.split(',')):
    tv = np.array([total_variation_from_uniform(s, beta) for s in scores if len(s) > 1])
    report[f'beta={beta:g}'] = {
      'tv_mean': round(float(tv.mean()), 4),
      'tv_median': round(float(np.median(tv)), 4),
      'tv_max': round(float(tv.max()), 4),
    }
  print(json.dumps(report, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())

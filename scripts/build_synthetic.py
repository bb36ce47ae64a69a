"""Builds the ``synthetic_motion`` TFDS data set and prints time and counts.

  .venv/bin/python scripts/build_synthetic.py --data_dir=/tmp/tfds
  .venv/bin/python scripts/build_synthetic.py --data_dir=/tmp/tfds --config=tiny
  .venv/bin/python scripts/build_synthetic.py --data_dir=/tmp/tfds \
      --override=num_frames=32 --override=resolution=32,32

An existing build of the same config is reused (TFDS skips it): pass
``--overwrite`` to time a fresh build.
"""

from __future__ import annotations

import argparse
import ast
import collections
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence


def _parse_override(text: str) -> tuple:
  if '=' not in text:
    raise argparse.ArgumentTypeError(f'--override expects key=value, got {text!r}')
  key, value = text.split('=', 1)
  if ',' in value:
    return key, tuple(ast.literal_eval(v) for v in value.split(','))
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', required=True, help='TFDS data directory')
  parser.add_argument('--config', default='default', help="'default' or 'tiny'")
  parser.add_argument(
    '--override',
    action='append',
    default=[],
    type=_parse_override,
    help='SyntheticMotionConfig field, e.g. num_train=160 (repeatable)',
  )
  parser.add_argument(
    '--num_workers', type=int, default=None, help='rendering processes (default: min(2, CPUs))'
  )
  parser.add_argument(
    '--overwrite', action='store_true', help="delete this config's existing build first"
  )
  args = parser.parse_args(argv)

  # Imported here so that --help does not pay for TensorFlow.
  from jaxvssl.datasets.builders import synthetic_motion  # pylint: disable=g-import-not-at-top

  overrides: Dict[str, Any] = dict(args.override)
  config = synthetic_motion.make_config(args.config, **overrides)
  if args.overwrite:
    path = os.path.join(args.data_dir, 'synthetic_motion', config.name)
    if os.path.isdir(path):
      shutil.rmtree(path)
  start = time.perf_counter()
  builder = synthetic_motion.build_synthetic_motion(
    args.data_dir, args.config, num_workers=args.num_workers, **overrides
  )
  seconds = time.perf_counter() - start

  counts = {}
  for split, info in builder.info.splits.items():
    counts[split] = info.num_examples
  # Class balance from the generator's assignment rule (no need to read back).
  from jaxvssl.datasets import synthetic  # pylint: disable=g-import-not-at-top

  per_class: Dict[str, List[int]] = {}
  for split, n in counts.items():
    c = collections.Counter(synthetic.example_label(i) for i in range(n))
    per_class[split] = [c[k] for k in range(synthetic.NUM_CLASSES)]
  size_mb = builder.info.dataset_size / 2**20
  print(f'synthetic_motion/{config.name} at {builder.data_dir}')
  print(
    f'  frames={config.num_frames} resolution={config.height_width} fps={config.fps} '
    f'motion_top_k={config.resolved_top_k()}'
  )
  print(
    f'  build time: {seconds:.1f} s (num_workers={"auto" if args.num_workers is None else args.num_workers})'
  )
  for split, n in counts.items():
    print(
      f'  {split}: {n} videos; per class min/max {min(per_class[split])}/{max(per_class[split])}'
    )
  print(f'  size on disk: {size_mb:.1f} MiB')
  return {'seconds': seconds, 'counts': counts, 'config': config.name}


if __name__ == '__main__':
  main(sys.argv[1:])

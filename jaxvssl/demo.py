"""`jaxvssl demo`: the README's main job, end to end on the embedded data set.

1. build synthetic_motion (TFDS) into --data_dir, unless already built;
2. pretrain --config (default: tiny MoCo) into WORKDIR/pretrain (resumes if interrupted);
3. evaluate the pretrained backbone and the same backbone at random initialisation;
4. print the comparison table and write it, the loss curves, R@k curves, retrieval galleries and
   embedding plots under WORKDIR.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from jaxvssl import config as config_lib
from jaxvssl import evaluate, train
from jaxvssl.datasets.builders import synthetic_motion
from jaxvssl.evaluation import plots

DEFAULT_CONFIG = 'configs/moco.py:tiny'


def demo_main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
    prog='jaxvssl demo', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--workdir', default='runs/demo')
  parser.add_argument('--data_dir', default=os.path.join('data', 'tfds'))
  parser.add_argument('--config', default=DEFAULT_CONFIG)
  parser.add_argument('--variant', default='default', help='synthetic_motion variant to build')
  args, overrides = parser.parse_known_args(argv)
  overrides = [o.removeprefix('--config.') for o in overrides]

  times = {}
  t = time.perf_counter()
  synthetic_motion.build_synthetic_motion(args.data_dir, args.variant)
  times['build data'] = time.perf_counter() - t

  config = config_lib.load_config(
    args.config,
    [
      f'data.name=synthetic_motion/{args.variant}',
      f'data.data_dir={os.path.abspath(args.data_dir)}',
      *overrides,
    ],
  )
  pretrain_dir = os.path.join(args.workdir, 'pretrain')
  t = time.perf_counter()
  train.train_and_evaluate(config, pretrain_dir)
  times['pretrain'] = time.perf_counter() - t

  method = config.method
  t = time.perf_counter()
  evaluate.evaluate_run(
    pretrain_dir,
    os.path.join(args.workdir, 'eval', 'random_init'),
    random_init=True,
    run_name='random init',
  )
  evaluate.evaluate_run(
    pretrain_dir, os.path.join(args.workdir, 'eval', method), run_name=f'{method} pretrained'
  )
  times['evaluate'] = time.perf_counter() - t

  table = evaluate.compare_runs(
    [os.path.join(args.workdir, 'eval', 'random_init'), os.path.join(args.workdir, 'eval', method)],
    args.workdir,
    names=['random init', f'{method} ({config.model.backbone}) pretrained'],
  )
  plots.plot_loss_curves(
    {method: os.path.join(pretrain_dir, 'metrics.jsonl')},
    os.path.join(args.workdir, 'loss_curves.png'),
  )
  print('\n' + table)
  print('stage times: ' + ', '.join(f'{k} {v / 60:.1f} min' for k, v in times.items()))
  print(
    f'written: {args.workdir}/comparison.md, loss_curves.png, recall_at_k.png, '
    f'eval/*/retrieval_gallery.png, eval/*/embedding_test.png, eval/*/*/results.json'
  )
  return 0

"""The `jaxvssl` command line.

  jaxvssl demo      --workdir=runs/demo         build data -> pretrain -> evaluate -> report
  jaxvssl train     --config=configs/moco.py:tiny --workdir=runs/moco [--config.key=value ...]
  jaxvssl evaluate  --workdir=runs/moco [--random_init] [--out=DIR]
  jaxvssl compare   RUN_OR_RESULTS ... --out=DIR
  jaxvssl export    --workdir=RUN [--step=N] --out=FILE [--format=npz|msgpack|torch]
                                                the backbone's weights + FILE.json (docs/interop.md)
  jaxvssl ablate    configs/ablations/cacl_table1.py [--seeds 0,1,2] [--rows a,b] [--jobs N]
                    [--out DIR] [--data_dir DIR] [--record DIR] [--collect] [--dry_run]
                    [--config.key=value ...]
                                                every row x seed: train + evaluate, mean ± std
  jaxvssl build-data [--data_dir=DIR] [--variant=default]
  jaxvssl export-videos ...                     synthetic_motion as UCF101/HMDB51-style files
  jaxvssl prepare   ucf101|hmdb51|kinetics|folder ...   real video data sets -> TFDS

`python -m jaxvssl.main` is the same as `jaxvssl train`.

Exit codes: 0 done; 2 a usage or config error, pretrained weights that are missing or do not fit,
or a workdir whose checkpoint another config wrote (one line on stderr names the file, key or
value), a workdir that is not writable or is in use, or checkpoints that are all corrupt; 3 the
training loss became NaN/Inf (the last good checkpoint is named); 4 a checkpoint could not be
written during training (earlier ones are intact); 130 / 143 stopped by Ctrl-C / SIGTERM after
saving a checkpoint (rerun the same command to resume). `jaxvssl ablate` exits 5 when a
(row, seed) failed (the others finished; results.md lists it).

The subcommands import their modules when they run, so `jaxvssl --help` does not load JAX or
TensorFlow; this is the only layer that imports lazily.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jaxvssl import errors

# Error class -> exit code; the message is printed as one line, without a traceback.
EXIT_CODES: dict[type[Exception], int] = {
  errors.ConfigError: 2,
  errors.PretrainedWeightsError: 2,
  errors.ResumeMismatchError: 2,
  errors.WorkdirError: 2,
  errors.CorruptCheckpointError: 2,
  errors.DataNotFoundError: 2,
  errors.NonFiniteLossError: 3,
  errors.CheckpointWriteError: 4,
}


def _split_config_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.key=value` overrides from the other arguments."""
  overrides, rest = [], []
  for arg in argv:
    (overrides if arg.startswith('--config.') else rest).append(arg)
  return [o[len('--config.') :] for o in overrides], rest


def train_main(argv: Sequence[str]) -> int:
  overrides, rest = _split_config_overrides(argv)
  parser = argparse.ArgumentParser(prog='jaxvssl train', description='Self-supervised pretraining.')
  parser.add_argument('--config', required=True, help='path/to/config.py[:variant]')
  parser.add_argument('--workdir', required=True, help='checkpoints, metrics and config go here')
  parser.add_argument(
    '--allow_config_change',
    action='store_true',
    help="resume although the config differs from the run's config.json (recorded)",
  )
  args = parser.parse_args(rest)
  from jaxvssl import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxvssl import train  # pylint: disable=g-import-not-at-top

  config = config_lib.load_config(args.config, overrides)
  train.train_and_evaluate(config, args.workdir, allow_config_change=args.allow_config_change)
  return 0


def evaluate_main(argv: Sequence[str]) -> int:
  overrides, rest = _split_config_overrides(argv)
  parser = argparse.ArgumentParser(
    prog='jaxvssl evaluate', description='Retrieval, linear probe, shuffle sensitivity.'
  )
  parser.add_argument('--workdir', required=True, help='a pretraining run directory')
  parser.add_argument(
    '--random_init',
    action='store_true',
    help='evaluate the same backbone at random initialisation instead',
  )
  parser.add_argument('--out', default=None, help='output dir (default WORKDIR/eval[_random_init])')
  parser.add_argument('--step', type=int, default=None, help='checkpoint step (default latest)')
  parser.add_argument('--finetune', action='store_true', help='also run finetuning')
  parser.add_argument(
    '--weights',
    default=None,
    metavar='FILE[:BACKBONE]',
    help="evaluate this exported weights file (jaxvssl export) with the run's data and protocols "
    "instead of the run's checkpoint",
  )
  args = parser.parse_args(rest)
  if args.weights and (args.random_init or args.step is not None or args.finetune):
    parser.error('--weights cannot be combined with --random_init, --step or --finetune')
  from jaxvssl import evaluate  # pylint: disable=g-import-not-at-top

  evaluate.evaluate_run(
    args.workdir,
    out_dir=args.out,
    random_init=args.random_init,
    step=args.step,
    finetune=args.finetune,
    overrides=overrides,
    weights=args.weights,
  )
  return 0


def compare_main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
    prog='jaxvssl compare', description='Several evaluations side by side, plus plots.'
  )
  parser.add_argument('runs', nargs='+', help='evaluation dirs or results.json files')
  parser.add_argument('--out', required=True)
  parser.add_argument('--names', default=None, help='comma-separated row names')
  args = parser.parse_args(argv)
  from jaxvssl import evaluate  # pylint: disable=g-import-not-at-top

  names = args.names.split(',') if args.names else None
  print(evaluate.compare_runs(args.runs, args.out, names))
  return 0


def export_main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
    prog='jaxvssl export', description="A run's backbone weights + a JSON sidecar (FILE.json)."
  )
  parser.add_argument('--workdir', required=True, help='a training run directory')
  parser.add_argument('--step', type=int, default=None, help='checkpoint step (default latest)')
  parser.add_argument('--out', required=True, help='FILE.npz, FILE.msgpack or FILE.pt')
  parser.add_argument(
    '--format',
    choices=('npz', 'msgpack', 'torch'),
    default=None,
    help="default: from --out's extension (.pt: a torchvision state dict, needs torch)",
  )
  args = parser.parse_args(argv)
  from jaxvssl import hub  # pylint: disable=g-import-not-at-top

  out, sidecar = hub.export_run(args.workdir, args.out, step=args.step, fmt=args.format)
  print(f'wrote {out} and {sidecar}')
  return 0


def ablate_main(argv: Sequence[str]) -> int:
  from jaxvssl import ablate  # pylint: disable=g-import-not-at-top

  return ablate.ablate_main(list(argv))


def build_data_main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
    prog='jaxvssl build-data', description='Builds the embedded synthetic_motion data set.'
  )
  parser.add_argument('--data_dir', default=os.path.join('data', 'tfds'))
  parser.add_argument('--variant', default='default', help="'default' or 'tiny'")
  args = parser.parse_args(argv)
  from jaxvssl.datasets.builders import synthetic_motion  # pylint: disable=g-import-not-at-top

  builder = synthetic_motion.build_synthetic_motion(args.data_dir, args.variant)
  for split, info in builder.info.splits.items():
    print(f'synthetic_motion/{args.variant} {split}: {info.num_examples} videos in {args.data_dir}')
  return 0


def export_videos_main(argv: Sequence[str]) -> int:
  from jaxvssl.datasets import export_videos  # pylint: disable=g-import-not-at-top

  return export_videos.export_main(list(argv)) or 0


def prepare_main(argv: Sequence[str]) -> int:
  from jaxvssl.datasets import prepare  # pylint: disable=g-import-not-at-top

  return prepare.prepare_main(list(argv)) or 0


def demo_main(argv: Sequence[str]) -> int:
  from jaxvssl import demo  # pylint: disable=g-import-not-at-top

  return demo.demo_main(list(argv))


COMMANDS = {
  'demo': demo_main,
  'train': train_main,
  'evaluate': evaluate_main,
  'compare': compare_main,
  'export': export_main,
  'ablate': ablate_main,
  'build-data': build_data_main,
  'export-videos': export_videos_main,
  'prepare': prepare_main,
}


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
    print(__doc__)
    return 0 if not argv or argv[0] in ('-h', '--help') else 2
  try:
    return COMMANDS[argv[0]](argv[1:])
  except errors.TrainingInterrupted as e:
    print(f'jaxvssl {argv[0]}: {e}', file=sys.stderr)
    return 128 + e.signum  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM
  except tuple(EXIT_CODES) as e:
    kind = 'config error: ' if isinstance(e, errors.ConfigError) else ''
    print(f'jaxvssl {argv[0]}: {kind}{e}', file=sys.stderr)
    return next(code for cls, code in EXIT_CODES.items() if isinstance(e, cls))


if __name__ == '__main__':
  sys.exit(main())

"""``jaxvssl prepare``: build a TFDS data set from video files already on disk.

Nothing is downloaded. Examples::

    jaxvssl prepare ucf101 --videos_dir /data/UCF-101 \\
        --annotations_dir /data/ucfTrainTestlist --split 1 2 3
    jaxvssl prepare hmdb51 --videos_dir /data/hmdb51 \\
        --annotations_dir /data/testTrainMulti_7030_splits
    jaxvssl prepare kinetics --variant 400 --videos_dir /data/k400/clips \\
        --annotations_dir /data/k400/annotations --beam \\
        --beam_pipeline_options 'runner=DirectRunner,direct_num_workers=16,direct_running_mode=multi_processing'
    jaxvssl prepare folder --videos_dir /data/my_videos --config_name mine

The result is read with ``tfds.builder('<name>/<config>', data_dir=...)``
(names and configs in ``jaxvssl.datasets.builders.video_files``): e.g. the config
keys ``data.name = 'ucf101/split1'`` and ``data.data_dir``. For every data set
the command prints per split how many videos were written, listed and bad
(by reason), warns when an official split size is not met, and leaves
``bad_videos.json`` / ``bad_videos.tsv`` in the data set directory.

This module imports TensorFlow only inside ``prepare_main``: decoding workers
are spawned processes that re-import the main module.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from jaxvssl.datasets import decode

DATASETS = ('ucf101', 'hmdb51', 'kinetics', 'folder')
# Default knobs of the command line (also DecodeOptions defaults).
DEFAULTS = decode.DecodeOptions()


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog='jaxvssl prepare',
    description='Build a TFDS video data set (JPEG frames, labels, motion '
    'scores) from local files. Nothing is downloaded.',
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument('dataset', choices=DATASETS, help='layout of the source files')
  parser.add_argument(
    '--videos_dir',
    required=True,
    help='root of the videos (class folders for ucf101, '
    'hmdb51, folder; any tree of clips for kinetics)',
  )
  parser.add_argument(
    '--annotations_dir',
    default=None,
    help='ucf101: dir of classInd.txt / trainlist0k.txt (None: '
    'ucfTrainTestlist in or beside --videos_dir); hmdb51: dir of '
    '<class>_test_split<k>.txt (None: testTrainMulti_7030_splits in '
    'or beside --videos_dir); kinetics: dir of train.csv / '
    'validate.csv / test.csv (required); folder: optional dir of '
    'train.txt / val.txt / test.txt',
  )
  parser.add_argument(
    '--split',
    type=int,
    nargs='+',
    default=[1],
    choices=(1, 2, 3),
    help='ucf101 / hmdb51 official split(s) to build; each is its own config splitK',
  )
  parser.add_argument(
    '--variant',
    default='400',
    choices=('400', '600', '700'),
    help='kinetics variant (config kVARIANT)',
  )
  parser.add_argument(
    '--config_name', default='default', help='folder: name of the config (video_folder/NAME)'
  )
  parser.add_argument(
    '--data_dir',
    default=None,
    help='TFDS data directory (None: $TFDS_DATA_DIR or ~/tensorflow_datasets); may be gs://...',
  )
  parser.add_argument(
    '--short_side',
    type=int,
    default=DEFAULTS.short_side,
    help='short side of the stored frames (even)',
  )
  parser.add_argument(
    '--fps', type=float, default=0.0, help='subsample to this frame rate (0: keep all frames)'
  )
  parser.add_argument(
    '--jpeg_quality',
    type=int,
    default=DEFAULTS.jpeg_quality,
    help='JPEG quality of the stored frames (1-100)',
  )
  parser.add_argument(
    '--min_frames',
    type=int,
    default=DEFAULTS.min_frames,
    help='shorter videos are reported as too_short',
  )
  parser.add_argument(
    '--truncation_tolerance',
    type=float,
    default=DEFAULTS.truncation_tolerance,
    help='fraction of the header frame count that may be '
    'missing before a video is reported as truncated',
  )
  parser.add_argument(
    '--num_workers',
    type=int,
    default=None,
    help='decoding processes of a local build (None: every core)',
  )
  parser.add_argument(
    '--file_format',
    default='tfrecord',
    choices=('tfrecord', 'array_record'),
    help='TFDS record format (array_record: random access)',
  )
  parser.add_argument(
    '--overwrite', action='store_true', help='rebuild even if the data set exists'
  )
  parser.add_argument(
    '--beam',
    action='store_true',
    help='decode in an Apache Beam pipeline (pip install apache-beam)',
  )
  parser.add_argument(
    '--beam_pipeline_options',
    default='',
    help='comma-separated Beam options without dashes, e.g. '
    '"runner=DataflowRunner,project=P,region=R,'
    'temp_location=gs://B/tmp,extra_package=dist/jaxvssl.whl" '
    '(implies --beam)',
  )
  return parser


def decode_options_from_args(args: argparse.Namespace) -> decode.DecodeOptions:
  return decode.DecodeOptions(
    short_side=args.short_side,
    target_fps=args.fps or None,
    jpeg_quality=args.jpeg_quality,
    min_frames=args.min_frames,
    truncation_tolerance=args.truncation_tolerance,
  )


def _beam_options(spec: str):
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top

  flags = [f'--{item.strip()}' for item in spec.split(',') if item.strip()]
  return pipeline_options.PipelineOptions(flags=flags)


def _configs(args: argparse.Namespace) -> list:
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top

  if args.dataset in ('ucf101', 'hmdb51'):
    return [f'split{k}' for k in dict.fromkeys(args.split)]
  if args.dataset == 'kinetics':
    return [f'k{args.variant}']
  if args.config_name == 'default':
    return ['default']
  return [
    video_files.VideoFilesConfig(name=args.config_name, description=f'Videos of {args.videos_dir}.')
  ]


def prepare_main(argv: Sequence[str] | None = None) -> int:
  """Entry point of ``jaxvssl prepare``; returns the process exit code.

  0: built (or already there); 2: bad arguments, missing annotation file or
  empty directory (the message names the path).
  """
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    options = decode_options_from_args(args)
  except ValueError as e:
    parser.error(str(e))
  use_beam = args.beam or bool(args.beam_pipeline_options)
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  download_config = tfds.download.DownloadConfig(
    try_download_gcs=False,
    download_mode=(
      tfds.download.GenerateMode.FORCE_REDOWNLOAD
      if args.overwrite
      else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    ),
    beam_options=_beam_options(args.beam_pipeline_options) if use_beam else None,
  )
  builder_cls = video_files.BUILDERS[args.dataset]
  for config in _configs(args):
    try:
      builder = builder_cls(
        config=config,
        data_dir=args.data_dir,
        videos_dir=args.videos_dir,
        annotations_dir=args.annotations_dir,
        decode_options=options,
        num_workers=args.num_workers,
        use_beam=use_beam,
      )
    except (FileNotFoundError, ValueError) as e:
      print(f'jaxvssl prepare: error: {e}', file=sys.stderr)
      return 2
    full_name = f'{builder.name}/{builder.builder_config.name}'
    if builder.is_prepared() and not args.overwrite:
      print(f'{full_name}: already prepared in {builder.data_dir} (pass --overwrite to rebuild)')
    else:
      start = time.perf_counter()
      builder.download_and_prepare(download_config=download_config, file_format=args.file_format)
      seconds = time.perf_counter() - start
      written = sum(s['written'] for s in builder.build_summary['splits'].values())
      print(
        f'{full_name}: built in {seconds:.1f} s ({written / seconds:.1f} '
        f'videos/s) into {builder.data_dir}'
      )
    print(video_files.format_summary(builder.build_summary))
    print(f'bad-video report: {builder.data_path / video_files.REPORT_TSV}')
  return 0


if __name__ == '__main__':
  sys.exit(prepare_main(sys.argv[1:]))

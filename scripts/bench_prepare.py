"""Benchmark of `jaxvssl prepare`: build speed and training-pipeline speed.

Writes N synthetic_motion videos in the UCF101 layout (jaxvssl.datasets.export_videos),
builds 'ucf101/split1' from them with the local process pool (and, with
--beam, with Apache Beam's DirectRunner), and reports for each build:

  videos/s      videos written per second of build (decode + resize + motion
                scores + JPEG + TFDS writing), wall clock;
  CPU s/video   CPU seconds (this process and its decoding workers) per video:
                independent of how busy a shared machine is; cores / this
                number is the throughput the build reaches on idle cores;
  MB/s in       source video bytes consumed per second;
  MB/s out      TFDS record bytes produced per second;

then reads the result with jaxvssl.inputs.pipeline.make_train_dataset (if it
exists) and reports training clips/s (16 frames, stride 2, crop 112, batch 8).

Usage:
  python scripts/bench_prepare.py --num_videos 64 --num_frames 64 \\
      --height 120 --width 160 --workers 1,2 [--beam] [--workdir /tmp/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time


def _dir_bytes(path: str, suffix: str = '') -> int:
  total = 0
  for dirpath, _, names in os.walk(path):
    total += sum(
      os.path.getsize(os.path.join(dirpath, n)) for n in names if n.endswith(suffix) or suffix in n
    )
  return total


def _cpu_seconds() -> float:
  """User + system CPU time of this process and its reaped children."""
  total = 0.0
  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    usage = resource.getrusage(who)
    total += usage.ru_utime + usage.ru_stime
  return total


def write_ucf101_videos(
  root: str, num_videos: int, num_frames: int, height: int, width: int, fps: float
) -> int:
  """Writes the videos; returns their total size in bytes."""
  from jaxvssl.datasets import export_videos

  num_test = max(1, num_videos // 4)
  examples = export_videos.synthetic_examples(
    'default',
    num_train=num_videos - num_test,
    num_test=num_test,
    num_frames=num_frames,
    resolution=(height, width),
    fps=fps,
  )
  export_videos.export_ucf101(root, examples)
  return _dir_bytes(os.path.join(root, 'UCF-101'), '.avi')


def build(root: str, data_dir: str, short_side: int, num_workers: int, beam: bool) -> dict:
  """One build of ucf101/split1 into data_dir; returns its measurements."""
  from jaxvssl.datasets import decode  # pylint: disable=g-import-not-at-top
  from jaxvssl.datasets.builders import video_files  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  shutil.rmtree(data_dir, ignore_errors=True)
  download_config = tfds.download.DownloadConfig(try_download_gcs=False)
  if beam:
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top

    download_config = tfds.download.DownloadConfig(
      try_download_gcs=False,
      beam_options=pipeline_options.PipelineOptions(
        [
          '--runner=DirectRunner',
          f'--direct_num_workers={num_workers}',
          '--direct_running_mode=multi_processing',
        ]
      ),
    )
  cpu_start = _cpu_seconds()
  start = time.perf_counter()
  builder = video_files.Ucf101(
    config='split1',
    data_dir=data_dir,
    videos_dir=os.path.join(root, 'UCF-101'),
    annotations_dir=os.path.join(root, 'ucfTrainTestlist'),
    decode_options=decode.DecodeOptions(short_side=short_side),
    num_workers=num_workers,
    use_beam=beam,
  )
  builder.download_and_prepare(download_config=download_config)
  seconds = time.perf_counter() - start
  cpu = _cpu_seconds() - cpu_start
  written = sum(s['written'] for s in builder.build_summary['splits'].values())
  return {
    'mode': 'beam-direct' if beam else 'local',
    'workers': num_workers,
    'seconds': seconds,
    'cpu_seconds': cpu,
    'videos': written,
    'out_bytes': _dir_bytes(os.fspath(builder.data_path), '.tfrecord'),
  }


def pipeline_clips_per_second(data_dir: str, num_batches: int, batch_size: int) -> float | None:
  try:
    from jaxvssl.inputs import pipeline  # pylint: disable=g-import-not-at-top
    from jaxvssl.inputs import data_config  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  if not hasattr(pipeline, 'make_train_dataset'):
    return None
  cfg = data_config.default_data_config()
  cfg.name, cfg.data_dir = 'ucf101/split1', data_dir
  cfg.crop_size = 112
  data_config.check_data_config(cfg)  # what loading a config does; the pipeline trusts it
  views = [pipeline.ViewSpec(name='clip', num_frames=16, stride=2)]
  ds = pipeline.make_train_dataset(cfg, views, global_batch_size=batch_size, seed=0)
  it = iter(ds)
  next(it)  # warm-up: graph tracing and the first shuffle buffer fill
  start = time.perf_counter()
  for _ in range(num_batches):
    next(it)
  return num_batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', default='/tmp/jaxvssl_bench_prepare')
  parser.add_argument('--num_videos', type=int, default=64)
  parser.add_argument('--num_frames', type=int, default=64)
  parser.add_argument('--height', type=int, default=120)
  parser.add_argument('--width', type=int, default=160)
  parser.add_argument('--fps', type=float, default=25.0)
  parser.add_argument('--short_side', type=int, default=128)
  parser.add_argument(
    '--workers',
    default=None,
    help='comma-separated worker counts to compare (default: 1 and every core)',
  )
  parser.add_argument('--beam', action='store_true', help='also build with Beam DirectRunner')
  parser.add_argument('--pipeline_batches', type=int, default=20)
  parser.add_argument('--pipeline_batch_size', type=int, default=8)
  args = parser.parse_args(argv)

  from jaxvssl.datasets import decode  # pylint: disable=g-import-not-at-top

  workers = (
    [int(w) for w in args.workers.split(',')]
    if args.workers
    else sorted({1, decode.default_num_workers()})
  )
  root = os.path.join(args.workdir, 'src')
  shutil.rmtree(args.workdir, ignore_errors=True)
  start = time.perf_counter()
  in_bytes = write_ucf101_videos(
    root, args.num_videos, args.num_frames, args.height, args.width, args.fps
  )
  print(f'load average before the builds: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores')
  print(
    f'exported {args.num_videos} videos ({args.num_frames} frames, '
    f'{args.width}x{args.height}, {in_bytes / 1e6:.1f} MB) in '
    f'{time.perf_counter() - start:.1f} s'
  )
  results = []
  runs = [(w, False) for w in workers] + ([(workers[-1], True)] if args.beam else [])
  for num_workers, beam in runs:
    r = build(
      root,
      os.path.join(args.workdir, f'tfds_{num_workers}_{int(beam)}'),
      args.short_side,
      num_workers,
      beam,
    )
    r['videos_per_s'] = r['videos'] / r['seconds']
    r['in_mb_per_s'] = in_bytes / 1e6 / r['seconds']
    r['out_mb_per_s'] = r['out_bytes'] / 1e6 / r['seconds']
    results.append(r)
    print(
      f'build {r["mode"]:<11} workers {num_workers:>2}: {r["seconds"]:6.1f} s, '
      f'{r["videos_per_s"]:6.2f} videos/s, {r["in_mb_per_s"]:6.2f} MB/s in, '
      f'{r["out_mb_per_s"]:6.2f} MB/s out ({r["out_bytes"] / 1e6:.1f} MB), '
      f'{r["cpu_seconds"] / r["videos"]:.3f} CPU s/video'
    )
  clips = pipeline_clips_per_second(
    os.path.join(args.workdir, f'tfds_{workers[-1]}_0'),
    args.pipeline_batches,
    args.pipeline_batch_size,
  )
  if clips is None:
    print('pipeline: jaxvssl.inputs.pipeline.make_train_dataset not available')
  else:
    print(
      f'pipeline make_train_dataset: {clips:.1f} clips/s (16x112x112, '
      f'batch {args.pipeline_batch_size})'
    )
  print(json.dumps({'args': vars(args), 'builds': results, 'pipeline_clips_per_s': clips}))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))

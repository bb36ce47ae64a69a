"""Throughput of the training input pipeline, in clips per second.

In-memory source (default): procedurally drawn videos JPEG-encoded at the
stored resolution of the builders (short side 128), so the measurement is
decode + sampling + augmentation, not disk:

    .venv/bin/python scripts/bench_pipeline.py
    .venv/bin/python scripts/bench_pipeline.py --preset mlfo --batch_size 32

A prepared TFDS data set instead (reads data_dir/name/split):

    .venv/bin/python scripts/bench_pipeline.py --data_dir ~/tensorflow_datasets \\
        --name synthetic_motion --split train

clips/s counts every augmented clip produced (one per view per example);
videos/s counts examples; clips_per_cpu_s divides by the CPU time the
process used instead of wall time (meaningful on a shared machine). The first `--warmup` batches (tracing, buffer
fill) are excluded.

Input modes (`--modes`, comma-separated; docs/input_pipeline.md, "Accelerator input"):
  host            the default path: decode, crop, full augmentation and normalisation on the
                  host, float32 batches.
  uint8           the same augmentation on the host, uint8 batches (normalised on the device).
  device_augment  the host decodes and crops only; uint8 batches plus the augmentation
                  parameters; flip, jitter, grayscale, blur and normalisation on the device.
  device_augment_decode_crop  `device_augment` decoding only each crop window
                  (tf.image.decode_and_crop_jpeg).
Every mode reports host clips/s, clips per CPU-second and bytes per clip sent to the device;
`--device_time` also times the device half (`jaxvssl.inputs.device.prepare_batch`, jitted, on
JAX's default backend: the CPU here, the accelerator on a GPU machine) per batch.

    .venv/bin/python scripts/bench_pipeline.py --modes host,uint8,device_augment --device_time
    .venv/bin/python scripts/bench_pipeline.py --tiny   # seconds: the smoke test's run

A method's own training input (`--config`, with `--set KEY=VALUE` overrides): its views and
extras, data config and batch size, from the in-memory source or `--data_dir`:

    .venv/bin/python scripts/bench_pipeline.py --config configs/rate_order.py:tiny \
        --data_dir data/tfds --name synthetic_motion/default --steps 15 --warmup 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import time

import cv2
import numpy as np

from jaxvssl.inputs import data_config, pipeline, timing
from jaxvssl.inputs import views as V
from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()


def presets(frames: int, stride: int) -> dict[str, tuple[V.ViewSpec, ...]]:
  """View sets shaped like the methods' (the pipeline cost depends only on these)."""
  return {
    # cacl: one clip, two augmentations.
    'cacl': (
      V.ViewSpec('query', frames, stride, temporal_group=0, augment_group=0),
      V.ViewSpec('key', frames, stride, temporal_group=0, augment_group=1),
    ),
    # moco / scvrl L_V: two clips of one video.
    'moco': (V.ViewSpec('query', frames, stride), V.ViewSpec('key', frames, stride)),
    # mlfo: 2*frames window -> first half, second half, long subsampled.
    'mlfo': (
      V.ViewSpec('a', frames, stride, temporal_group=0),
      V.ViewSpec('b', frames, stride, temporal_group=0, offset=frames * stride),
      V.ViewSpec('long', frames, 2 * stride, temporal_group=0),
    ),
  }


def synthetic_source(
  num_videos: int, length: int, height: int, width: int, quality: int, seed: int = 0
) -> tf.data.Dataset:
  """Smooth moving patterns (JPEG size/decode cost close to natural frames)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  examples = []
  for v in range(num_videos):
    fx, fy, speed = rng.uniform(0.02, 0.15), rng.uniform(0.02, 0.15), rng.uniform(0.5, 3)
    phase = rng.uniform(0, 6.28, size=3)
    jpegs = []
    for t in range(length):
      channels = [127 + 120 * np.sin(fx * (xx + speed * t) + fy * yy + phase[c]) for c in range(3)]
      frame = np.clip(np.stack(channels, -1) + rng.normal(0, 6, (height, width, 3)), 0, 255)
      ok, buf = cv2.imencode('.jpg', frame.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
      assert ok
      jpegs.append(buf.tobytes())
    windows = max(1, length // 25)
    examples.append(
      {
        'video': tf.constant(jpegs),
        'label': tf.constant(v % 10, tf.int64),
        'video_id': tf.constant(f'bench{v}'),
        'fps': tf.constant(25.0),
        'num_frames': tf.constant(length, tf.int32),
        'motion_scores': tf.constant(rng.uniform(size=windows), tf.float32),
      }
    )
  ds = tf.data.Dataset.from_tensors(examples[0])
  for ex in examples[1:]:
    ds = ds.concatenate(tf.data.Dataset.from_tensors(ex))
  return ds


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


MODES = {
  'host': {},
  'uint8': dict(transfer_dtype='uint8'),
  'device_augment': dict(transfer_dtype='uint8', device_augment=True),
  'device_augment_decode_crop': dict(transfer_dtype='uint8', device_augment=True, decode_crop=True),
}


def _device_ms(cfg, batch, repeats: int) -> float:
  """Median ms of the jitted device half (`prepare_batch`) of one batch on JAX's default backend."""
  import jax  # only here: the host measurement never starts JAX

  from jaxvssl.inputs import device

  fn = jax.jit(lambda b: device.prepare_batch(b, cfg))
  on_device = jax.device_put(batch)
  jax.block_until_ready(fn(on_device))  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(on_device))
    times.append(time.perf_counter() - t0)
  return 1e3 * float(np.median(times))


def measure(cfg, views, source, args, mode: str) -> dict:
  """Host throughput of one input mode (module docstring) over `args.steps` batches."""
  cfg = copy.deepcopy(cfg)
  for key, value in MODES[mode].items():
    cfg[key] = value
  data_config.check_data_config(cfg)  # what loading a config does; the pipeline trusts it
  ds = pipeline.make_train_dataset(
    cfg, views, global_batch_size=args.batch_size, seed=0, source=source, device_transfer=True
  )
  result = _time_batches(ds, views, args.batch_size, args, cfg)
  return {'mode': mode, **result}


def measure_config(args, source) -> dict:
  """`--config`: the host throughput of a method's own training input (its views and extras,
  e.g. rate_order's segment sampling; its data config; its batch size unless `--tiny`)."""
  from jaxvssl import config as config_lib  # only here: the presets never build a method
  from jaxvssl import methods

  overrides = list(args.set)
  if args.data_dir:
    overrides += [f'data.name={args.name}', f'data.data_dir={args.data_dir}']
  cfg = config_lib.load_config(args.config, overrides)
  method = methods.build(cfg)
  batch_size = args.batch_size if args.tiny else cfg.batch_size
  ds = method.train_dataset(
    global_batch_size=batch_size,
    seed=0,
    process_index=0,
    process_count=1,
    start_step=0,
    source=source,
  )
  result = _time_batches(ds, list(method.views()), batch_size, args, cfg.data)
  return {'mode': f'{args.config} {" ".join(args.set)}'.strip(), **result}


def _time_batches(ds, views, batch_size: int, args, data_cfg) -> dict:
  """Throughput of `args.steps` batches of `ds` after `args.warmup`, by wall and CPU time."""
  batches = timing.TimedIterator(ds.as_numpy_iterator())
  for _ in range(args.warmup):
    batch = next(batches)
  batches.pop_wait()
  t0, cpu0 = time.perf_counter(), _cpu_seconds()
  for _ in range(args.steps):
    batch = next(batches)
  elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
  videos = args.steps * batch_size
  clips = videos * len(views)
  view_bytes = sum(batch[v.name].nbytes for v in views)
  param_bytes = sum(v.nbytes for k, v in batch.items() if k.startswith('augment/'))
  result = {
    'batch_size': batch_size,
    'cpu_s_per_batch': round(cpu / args.steps, 4),
    'videos_per_s': round(videos / elapsed, 2),
    'clips_per_s': round(clips / elapsed, 2),
    # Load-independent: clips per second of CPU time used by this process
    # (on a shared machine clips_per_s mostly measures the other tenants).
    'clips_per_cpu_s': round(clips / cpu, 2),
    'cpu_cores_busy': round(cpu / elapsed, 2),
    'bytes_per_clip': int((view_bytes + param_bytes) // (batch_size * len(views))),
    'frames_decoded_upper_bound_per_s': round(
      videos * sum(v.num_frames for v in views) / elapsed, 1
    ),
  }
  if args.device_time:
    result['device_ms_per_batch'] = round(_device_ms(data_cfg, batch, args.device_repeats), 2)
  return result


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--preset', default='cacl', choices=['cacl', 'moco', 'mlfo'])
  p.add_argument(
    '--config',
    default=None,
    help="path.py[:variant]: time this config's own training input instead of a preset",
  )
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='for --config')
  p.add_argument('--num_frames', type=int, default=16)
  p.add_argument('--stride', type=int, default=2)
  p.add_argument('--crop_size', type=int, default=112)
  p.add_argument('--batch_size', type=int, default=16)
  p.add_argument('--steps', type=int, default=30)
  p.add_argument('--warmup', type=int, default=5)
  p.add_argument('--num_parallel_calls', type=int, default=-1)
  p.add_argument(
    '--no_photometric', action='store_true', help='switch off colour jitter, grayscale and blur'
  )
  p.add_argument('--num_videos', type=int, default=48)
  p.add_argument('--video_length', type=int, default=96)
  p.add_argument('--height', type=int, default=128)
  p.add_argument('--width', type=int, default=171)
  p.add_argument('--jpeg_quality', type=int, default=90)
  p.add_argument('--data_dir', default=None, help='read a TFDS data set instead')
  p.add_argument('--name', default='synthetic_motion')
  p.add_argument('--split', default='train')
  p.add_argument('--modes', default='host', help=f'comma-separated subset of {tuple(MODES)}')
  p.add_argument('--device_time', action='store_true', help='also time the device half')
  p.add_argument('--device_repeats', type=int, default=5)
  p.add_argument(
    '--tiny', action='store_true', help='seconds: 4 videos, 8x32 px clips, 2 steps (smoke test)'
  )
  p.add_argument('--json', default=None, help='also write the result here')
  args = p.parse_args(argv)
  if args.tiny:
    args.num_videos, args.video_length, args.height, args.width = 4, 24, 48, 64
    args.num_frames, args.stride, args.crop_size = 8, 2, 32
    args.batch_size, args.steps, args.warmup, args.device_repeats = 2, 2, 1, 1
  modes = [m for m in args.modes.split(',') if m]
  unknown = sorted(set(modes) - set(MODES))
  if unknown:
    p.error(f'unknown modes {unknown}; choose from {tuple(MODES)}')

  cfg = data_config.default_data_config()
  cfg.crop_size, cfg.num_frames, cfg.stride = args.crop_size, args.num_frames, args.stride
  cfg.num_parallel_calls = args.num_parallel_calls
  cfg.shuffle_buffer = 64
  if args.no_photometric:
    cfg.color_jitter_prob = cfg.grayscale_prob = cfg.blur_prob = 0.0
  source = None
  if args.data_dir:
    cfg.name, cfg.data_dir, cfg.train_split = args.name, args.data_dir, args.split
    where = f'tfds:{args.name}/{args.split} @ {args.data_dir}'
  else:
    t0 = time.perf_counter()
    source = synthetic_source(
      args.num_videos, args.video_length, args.height, args.width, args.jpeg_quality
    ).cache()
    where = (
      f'in-memory {args.num_videos} videos x {args.video_length} frames '
      f'{args.height}x{args.width} JPEG q{args.jpeg_quality} '
      f'(built in {time.perf_counter() - t0:.1f}s)'
    )
  if args.config:
    result = {
      'source': where,
      'config': args.config,
      'overrides': args.set,
      'steps': args.steps,
      'cpu_count': os.cpu_count(),
      'load_avg_1m': round(os.getloadavg()[0], 2),
      'modes': [measure_config(args, source)],
    }
    return _emit(result, args.json)
  views = presets(args.num_frames, args.stride)[args.preset]
  result = {
    'source': where,
    'preset': args.preset,
    'views': len(views),
    'clip': f'{args.num_frames}x{args.crop_size}x{args.crop_size} stride {args.stride}',
    'batch_size': args.batch_size,
    'steps': args.steps,
    'photometric': not args.no_photometric,
    'cpu_count': os.cpu_count(),
    'load_avg_1m': round(os.getloadavg()[0], 2),
    'modes': [measure(cfg, views, source, args, mode) for mode in modes],
  }
  return _emit(result, args.json)


def _emit(result: dict, path: str | None) -> dict:
  """Prints the result as JSON and writes it to `path` too."""
  print(json.dumps(result, indent=1))
  if path:
    with open(path, 'w') as f:
      json.dump(result, f, indent=1)
  return result


if __name__ == '__main__':
  main()

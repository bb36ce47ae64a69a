"""CPU timings of the training step and its convolutions, JAX (`--impl=xla|auto`) vs PyTorch.

Parts (`--parts`, default all three):
  step    the `configs/moco.py:tiny` MoCo train step exactly as `jaxvssl.train` runs it
          (methods.build, optim, state.init_train_state, train.make_train_step, jit with the
          mesh shardings and the donated state), on random batches of the pipeline's shapes.
  layers  forward and forward+backward of every distinct conv layer of the tiny backbone (found
          by intercepting the backbone's `Conv` modules); the first layer (on the input clip)
          differentiates the kernel only, as in training.
  large   R3D-18 and R(2+1)D-18 forward+backward (params) at batch 8 x 16x112x112 (slow: about a
          minute per repeat with `--impl=xla`); `--skip_large` leaves it out.

`--impl` selects the convolution implementation (`jaxvssl/models/conv.py`; it sets
`$JAXVSSL_CONV_IMPL`): 'auto' (the per-shape CPU formulations) or 'xla' (plain
`lax.conv_general_dilated`). Warm-up (and compilation) is excluded; every figure is the median
and [min-max] of `--repeats` timed calls, in milliseconds.

`--with-torch`: the driver. Runs `--runs` rounds of fresh processes, interleaved
(jax xla, jax auto, torch, jax xla, ...), so that the load of a shared machine hits every
variant alike, and prints the per-variant medians over runs, [min-max], and the ratios to torch.
`torch.set_num_threads(2)` and JAX on the same 2 cores (the default). torch is optional:
`.venv/bin/pip install torch==2.13.0` (a CPU wheel); see scripts/bench_torch_reference.py.

`--paper`: the accelerator benchmark (docs/benchmarks.md, "Accelerator benchmark"). Every
backbone at paper size (C3D, R3D-18, R(2+1)D-18, S3D-G at 16x112x112; MViT-B with SCVRL's kt=2
cube embedding at 16x224x224; CACL's transformer, 768-d, 6 layers, 6 heads, on 32 ResNet-50
frame features) forward+backward in train mode, and each method's full train step (the paper
variant of its config, `PAPER_METHODS`), in float32 and bfloat16 (`--dtypes`). Per row: step
time, clips/s, the step's FLOPs from XLA's cost analysis, achieved FLOP/s and MFU against the
device's peak (`PEAK_FLOPS`; an unknown device kind reports no MFU), the compiled step's memory
(XLA's memory analysis) and the device's peak memory in use (where the backend reports it), and
for the methods with `--data_wait_steps N` the data-wait share of N steps fed by the method's
real input pipeline (in-memory synthetic JPEG videos, `config.data` as configured, including
its accelerator input options). `--tiny` shrinks everything to seconds (the smoke test).

Usage:
  .venv/bin/python scripts/bench_step.py --paper --tiny
  .venv/bin/python scripts/bench_step.py --paper --dtypes float32,bfloat16 --data_wait_steps 20
  .venv/bin/python scripts/bench_step.py --paper --options device_input --data_wait_steps 20
  .venv/bin/python scripts/bench_step.py --impl=auto --skip_large
  .venv/bin/python scripts/bench_step.py --impl=xla --parts=layers
  .venv/bin/python scripts/bench_step.py --with-torch --runs 3 --skip_large
  .venv/bin/python scripts/bench_step.py --with-torch --runs 3 --parts=large --large_repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ('step', 'layers', 'large')
LARGE = ('r3d18', 'r2plus1d18')


def stats(times_s: list[float]) -> dict[str, Any]:
  ms = [1e3 * t for t in times_s]
  return dict(median=float(np.median(ms)), min=float(min(ms)), max=float(max(ms)), times=ms)


def fmt(s: dict[str, Any] | None) -> str:
  if not s:
    return '-'
  return f'{s["median"]:9.1f} [{s["min"]:.1f}-{s["max"]:.1f}]'


def time_calls(fn: Callable[[], Any], warmup: int, repeats: int) -> dict[str, Any]:
  """Runs `fn` (which blocks on its result) warmup times untimed, then repeats times timed."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return stats(times)


# ------------------------------------------------------------------------------------------------
# JAX parts (imported lazily: the driver itself never imports JAX).


def bench_step(
  warmup: int, repeats: int, config_spec: str, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
  """The config's train step (default: tiny MoCo), built as `jaxvssl.train` builds it, with
  its FLOPs from XLA's cost analysis (`--set key=value` overrides the config)."""
  import jax

  from jaxvssl import config as config_lib
  from jaxvssl import methods as methods_lib
  from jaxvssl import optim, parallel
  from jaxvssl import state as state_lib
  from jaxvssl import train

  config = config_lib.load_config(config_spec, overrides)
  mesh = parallel.make_mesh()
  num_devices = mesh.devices.size
  method = methods_lib.build(config, num_devices)
  schedule = optim.make_schedule(config)
  tx = optim.make_optimizer(config)
  rng = np.random.default_rng(0)
  local = {
    k: rng.standard_normal(v.shape).astype(np.float32)
    for k, v in method.example_batch(config.batch_size).items()
  }
  batch = parallel.global_batch(local, mesh)
  replicated = parallel.replicated_sharding(mesh)
  init_fn = lambda b: state_lib.init_train_state(method, tx, b, seed=config.seed)
  abstract_ts = jax.eval_shape(init_fn, batch)
  state_sharding = jax.tree_util.tree_map(lambda _: replicated, abstract_ts)
  ts = jax.jit(init_fn, out_shardings=state_sharding)(batch)
  batch_sharding = jax.tree_util.tree_map(lambda _: parallel.data_sharding(mesh), batch)
  step_fn = jax.jit(
    train.make_train_step(method, tx, schedule),
    in_shardings=(state_sharding, batch_sharding),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )
  holder = [ts]
  t0 = time.perf_counter()
  compiled = step_fn.lower(ts, batch).compile()
  compile_s = time.perf_counter() - t0

  def one_step():
    holder[0], metrics = compiled(holder[0], batch)
    jax.block_until_ready((holder[0], metrics))

  result = time_calls(one_step, warmup, repeats)
  result['compile_s'] = compile_s
  result['gflops'] = (compiled_costs(compiled)['flops'] or 0.0) / 1e9
  result['devices'] = num_devices
  result['batch'] = {k: list(v.shape) for k, v in local.items()}
  return result


def tiny_conv_layers(config_spec: str) -> list[dict[str, Any]]:
  """Every conv module the tiny backbone calls: path, input shape, kernel, strides, padding."""
  import flax.linen as nn
  import jax

  from jaxvssl import config as config_lib
  from jaxvssl import methods as methods_lib
  from jaxvssl.models import conv as conv_lib

  config = config_lib.load_config(config_spec)
  method = methods_lib.build(config, 1)
  backbone = method.backbone()
  x = jax.ShapeDtypeStruct(
    (config.batch_size, config.data.num_frames) + (config.data.crop_size,) * 2 + (3,), np.float32
  )
  layers = []

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == '__call__' and isinstance(module, (nn.Conv, conv_lib.Conv)):
      inputs = args[0]
      kernel_size = tuple(module.kernel_size)
      n = len(kernel_size)
      strides = conv_lib.as_tuple(module.strides, n, 'strides')
      pads = conv_lib.explicit_padding(module.padding, inputs.shape[1:-1], kernel_size, strides)
      layers.append(
        dict(
          name='/'.join(module.path),
          x=list(inputs.shape),
          kernel=list(kernel_size)
          + [inputs.shape[-1] // module.feature_group_count, module.features],
          strides=list(strides),
          padding=[list(p) for p in pads],
          groups=module.feature_group_count,
        )
      )
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda x: backbone.init(jax.random.PRNGKey(0), x, train=True), x)
  for i, layer in enumerate(layers):
    layer['input_grad'] = i > 0  # the first conv sees the (pre-processed) clip: no gradient
  return layers


def _time_layer(layer: dict[str, Any], seed: int, warmup: int, repeats: int) -> dict[str, Any]:
  import jax
  import jax.numpy as jnp

  from jaxvssl.models import conv as conv_lib

  kx, kw, kc = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(kx, layer['x'], jnp.float32)
  w = 0.1 * jax.random.normal(kw, layer['kernel'], jnp.float32)
  strides, groups = tuple(layer['strides']), layer['groups']
  pads = tuple(map(tuple, layer['padding']))

  def f(x, w):
    return conv_lib.conv(x, w, strides, pads, feature_group_count=groups)

  ct = jax.random.normal(kc, jax.eval_shape(f, x, w).shape, jnp.float32)
  fwd = jax.jit(f)
  argnums = (0, 1) if layer['input_grad'] else (1,)
  # value_and_grad: the forward must run (grad alone of a linear map would skip it).
  bwd = jax.jit(jax.value_and_grad(lambda x, w: jnp.vdot(f(x, w), ct), argnums=argnums))
  return dict(
    layer,
    names=[layer['name']],
    count=1,
    impl=conv_lib.resolve_impl(x, w.shape, groups),
    fwd=time_calls(lambda: jax.block_until_ready(fwd(x, w)), warmup, repeats),
    fwd_bwd=time_calls(lambda: jax.block_until_ready(bwd(x, w)), warmup, repeats),
  )


def bench_layers(layers: list[dict[str, Any]], warmup: int, repeats: int) -> list[dict[str, Any]]:
  """Forward and forward+backward of each distinct layer through `conv_lib.conv`."""
  results, seen = [], {}
  for layer in layers:
    key = layer_key(layer)
    if key in seen:
      seen[key]['count'] += 1
      seen[key]['names'].append(layer['name'])
      continue
    seen[key] = _time_layer(layer, len(results), warmup, repeats)
    results.append(seen[key])
  return results


def _time_backbone(name: str, batch: int, warmup: int, repeats: int) -> dict[str, Any]:
  import jax
  import jax.numpy as jnp

  from jaxvssl import models

  backbone = models.get_backbone(name)
  x = jax.random.normal(jax.random.PRNGKey(0), (batch, 16, 112, 112, 3), jnp.float32)
  variables = jax.jit(lambda x: backbone.init(jax.random.PRNGKey(1), x, train=False))(x)

  def loss(params, batch_stats, x):
    feature, _ = backbone.apply(
      {'params': params, 'batch_stats': batch_stats}, x, train=True, mutable=['batch_stats']
    )
    return jnp.mean(jnp.square(feature))

  grad_fn = jax.jit(jax.value_and_grad(loss))
  params, batch_stats = variables['params'], variables['batch_stats']
  return time_calls(lambda: jax.block_until_ready(grad_fn(params, batch_stats, x)), warmup, repeats)


def bench_large(names: tuple[str, ...], batch: int, warmup: int, repeats: int) -> dict[str, Any]:
  """Backbone forward+backward (gradient of the params, train-mode BatchNorm) at 16x112x112."""
  return {name: _time_backbone(name, batch, warmup, repeats) for name in names}


def run_jax(args: argparse.Namespace) -> dict[str, Any]:
  os.environ['JAXVSSL_CONV_IMPL'] = args.impl
  path, _, variant = args.config.partition(':')
  if not os.path.isfile(path) and os.path.isfile(os.path.join(ROOT, path)):
    args.config = f'{os.path.join(ROOT, path)}:{variant}'
  import jax

  result: dict[str, Any] = dict(
    impl=args.impl, jax=jax.__version__, backend=jax.default_backend(), parts=args.parts
  )
  if 'step' in args.parts:
    result['step'] = bench_step(args.warmup, args.repeats, args.config, args.set)
    flops = f', {result["step"]["gflops"]:.2f} GFLOPs' if result['step']['gflops'] else ''
    what = ' '.join((args.config,) + args.set)
    print(f'step ({what}, impl={args.impl}): {fmt(result["step"])} ms{flops}', flush=True)
  if 'layers' in args.parts:
    result['layers'] = bench_layers(tiny_conv_layers(args.config), args.warmup, args.repeats)
    print_layers({f'jax {args.impl}': result['layers']})
  if 'large' in args.parts:
    result['large'] = bench_large(LARGE, args.large_batch, 1, args.large_repeats)
    for name, s in result['large'].items():
      print(f'{name} fwd+bwd batch {args.large_batch}x16x112x112: {fmt(s)} ms', flush=True)
  return result


# ------------------------------------------------------------------------------------------------
# The accelerator benchmark (`--paper`).

# Dense peak FLOP/s per device kind and compute dtype, from the vendors' data sheets (no
# sparsity). float32 on NVIDIA Ampere and later is TF32 on the tensor cores (JAX's default
# matmul/conv precision there); TPUs run float32 matmuls as bf16 passes by default. A kind not
# listed reports no MFU. Matched by substring of `jax.Device.device_kind`, first match wins.
PEAK_FLOPS: tuple[tuple[str, dict[str, float]], ...] = (
  ('H200', dict(float32=494.7e12, bfloat16=989.4e12)),
  ('H100 PCIe', dict(float32=378e12, bfloat16=756e12)),
  ('H100', dict(float32=494.7e12, bfloat16=989.4e12)),
  ('A100', dict(float32=156e12, bfloat16=312e12)),
  ('L4', dict(float32=60e12, bfloat16=121e12)),
  ('A10G', dict(float32=35e12, bfloat16=70e12)),
  ('V100', dict(float32=15.7e12, bfloat16=None)),
  ('TPU v4', dict(float32=275e12, bfloat16=275e12)),
  ('TPU v5 lite', dict(float32=197e12, bfloat16=197e12)),
  ('TPU v5p', dict(float32=459e12, bfloat16=459e12)),
)

# Backbone -> (frames, side) of its paper input; the CACL transformer reads frame features.
PAPER_BACKBONES = {
  'c3d': (16, 112),
  'r3d18': (16, 112),
  'r2plus1d18': (16, 112),
  's3d': (16, 112),
  'mvit_b_scvrl': (16, 224),
  'cacl_transformer': (32, 2048),  # 32 tokens (clip + shuffled clip) of ResNet-50 features
}
PAPER_METHODS = {
  'moco': 'configs/moco.py:r3d18',
  'frames': 'configs/frames.py:resnet50',
  'cacl': 'configs/cacl.py:sdp_vmoco_t.r3d18',
  'scvrl': 'configs/scvrl.py:mvit_b',
  'mlfo': 'configs/mlfo.py:r3d18',
  # The generator is benchmarked at its initialisation (the step's cost does not depend on the
  # view_synthesis run it would load).
  'rate_order': 'configs/rate_order.py:r2plus1d18',
  'view_synthesis': 'configs/view_synthesis.py:paper',
}
TINY_METHODS = {
  'moco': 'configs/moco.py:tiny',
  'frames': 'configs/frames.py:tiny',
  'cacl': 'configs/cacl.py:sdp_vmoco_t.tiny',
  'scvrl': 'configs/scvrl.py:tiny_mvit',
  'mlfo': 'configs/mlfo.py:tiny',
  'rate_order': 'configs/rate_order.py:tiny',
  'view_synthesis': 'configs/view_synthesis.py:tiny',
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
  """The dense peak FLOP/s of `device_kind` in `dtype` (`PEAK_FLOPS`), None when unknown."""
  for key, peaks in PEAK_FLOPS:
    if key.lower() in device_kind.lower():
      return peaks.get(dtype)
  return None


def compiled_costs(compiled) -> dict[str, Any]:
  """FLOPs (XLA cost analysis) and memory (XLA memory analysis) of a compiled step."""
  out: dict[str, Any] = dict(flops=None, compiled_memory_bytes=None)
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0] if cost else None
  if cost and cost.get('flops', -1) > 0:
    out['flops'] = float(cost['flops'])
  memory = compiled.memory_analysis()
  if memory is not None:
    # Arguments + outputs + temporaries, minus outputs aliased to (donated) arguments.
    out['compiled_memory_bytes'] = int(
      memory.argument_size_in_bytes
      + memory.output_size_in_bytes
      + memory.temp_size_in_bytes
      - memory.alias_size_in_bytes
    )
  return out


def _device_peak_bytes() -> int | None:
  import jax

  stats = jax.devices()[0].memory_stats()  # None on CPU
  return int(stats['peak_bytes_in_use']) if stats and 'peak_bytes_in_use' in stats else None


def paper_row(
  *,
  kind: str,
  name: str,
  dtype: str,
  clips: int,
  times: list[float],
  flops: float | None,
  device_kind: str,
  compiled_memory_bytes: int | None = None,
  device_peak_bytes: int | None = None,
  data_wait: float | None = None,
  extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
  """One `--paper` row from per-step times (ms): throughput, achieved FLOP/s and MFU against the
  device's peak (`peak_flops`), memory. Shared by this script and bench_torch_reference.py, so
  both frameworks' rows are computed and printed alike."""
  step_s = float(np.median(times)) / 1e3
  achieved = flops / step_s if flops else None
  peak = peak_flops(device_kind, dtype)
  return dict(
    kind=kind,
    name=name,
    dtype=dtype,
    clips=clips,
    step_ms=float(np.median(times)),
    clips_per_s=clips / step_s,
    flops=flops,
    achieved_flops_per_s=achieved,
    mfu=achieved / peak if achieved and peak else None,
    compiled_memory_bytes=compiled_memory_bytes,
    device_peak_bytes=device_peak_bytes,
    data_wait=data_wait,
    device=device_kind,
    **(extra or {}),
  )


def _row(kind, name, dtype, clips, times, costs, data_wait=None, extra=None) -> dict[str, Any]:
  import jax

  return paper_row(
    kind=kind,
    name=name,
    dtype=dtype,
    clips=clips,
    times=times,
    flops=costs['flops'],
    device_kind=jax.devices()[0].device_kind,
    compiled_memory_bytes=costs['compiled_memory_bytes'],
    device_peak_bytes=_device_peak_bytes(),
    data_wait=data_wait,
    extra=extra,
  )


def _timed(step, state, *args, warmup: int, repeats: int):
  """Runs `state = step(state, *args)[0]` warmup + repeats times; (state, per-call ms)."""
  import jax

  for _ in range(warmup):
    state = jax.block_until_ready(step(state, *args))[0]
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state = jax.block_until_ready(step(state, *args))[0]
    times.append(1e3 * (time.perf_counter() - t0))
  return state, times


def bench_paper_backbone(
  name: str, dtype: str, batch: int, tiny: bool, remat: bool, warmup: int, repeats: int
) -> dict[str, Any]:
  """Forward+backward (params) of one backbone in train mode, plus a plain SGD update."""
  import jax
  import jax.numpy as jnp

  from jaxvssl import models
  from jaxvssl.models.video_transformer import VideoTransformer

  frames, side = PAPER_BACKBONES[name]
  stages = (1, 2, 3, 4) if remat else ()
  if name == 'cacl_transformer':
    size = dict(token_dim=32, num_layers=2, num_heads=2) if tiny else {}
    net = VideoTransformer(dtype=jnp.dtype(dtype), remat_stages=(1,) if remat else (), **size)
    shape = (batch, 8, 64) if tiny else (batch, frames, side)
  else:
    kwargs = dict(dtype=jnp.dtype(dtype), remat_stages=stages)
    if tiny:
      net = (
        models.get_backbone('mvit_tiny', **kwargs)
        if name.startswith('mvit')
        else models.get_backbone(name, width_multiplier=1 / 16, **kwargs)
      )
      shape = (batch, 4, 32, 32, 3)
    else:
      net = models.get_backbone(name, **kwargs)
      shape = (batch, frames, side, side, 3)
  x = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float32)
  rngs = {'params': jax.random.PRNGKey(1), 'dropout': jax.random.PRNGKey(2)}
  variables = jax.jit(lambda x: net.init(rngs, x, train=False))(x)

  def step(variables, x):
    def loss(params):
      out, updates = net.apply(
        {**variables, 'params': params},
        x,
        train=True,
        mutable=['batch_stats'],
        rngs={'dropout': jax.random.PRNGKey(3)},
      )
      return jnp.mean(jnp.square(out.astype(jnp.float32))), updates

    (value, updates), grads = jax.value_and_grad(loss, has_aux=True)(variables['params'])
    params = jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, variables['params'], grads)
    return {**variables, **updates, 'params': params}, value

  fn = jax.jit(step, donate_argnums=(0,))
  compiled = fn.lower(variables, x).compile()
  costs = compiled_costs(compiled)
  _, times = _timed(compiled, variables, x, warmup=warmup, repeats=repeats)
  return _row('backbone', name, dtype, batch, times, costs, extra=dict(input=list(shape)))


def _data_wait(config, method, step_fn, ts, steps: int) -> float:
  """Data-wait share of `steps` steps fed by the method's pipeline (in-memory JPEG videos)."""
  import jax

  from bench_pipeline import synthetic_source
  from jaxvssl import parallel, train
  from jaxvssl.inputs import device as input_device
  from jaxvssl.inputs import timing  # pylint: disable=g-import-not-at-top

  mesh = parallel.make_mesh()
  source = synthetic_source(max(2 * config.batch_size, 8), 96, 128, 171, 90).cache()
  host = train.make_batches(config, method, 0, source)
  batches = timing.TimedIterator(
    input_device.prefetch(
      host, config.data.device_prefetch, lambda b: parallel.global_batch(b, mesh)
    )
  )
  ts = jax.block_until_ready(step_fn(ts, next(batches)))[0]  # pipeline warm-up
  batches.pop_wait()
  t0 = time.perf_counter()
  for _ in range(steps):
    ts, metrics = step_fn(ts, next(batches))
  jax.block_until_ready((ts, metrics))
  wait, _ = batches.pop_wait()
  return wait / (time.perf_counter() - t0)


def bench_paper_method(
  method_name: str,
  dtype: str,
  tiny: bool,
  batch: int,
  options: tuple[str, ...],
  warmup: int,
  repeats: int,
  data_wait_steps: int,
) -> dict[str, Any]:
  """The method's full train step (`train.make_train_step` as the loop builds it)."""
  import jax

  from jaxvssl import config as config_lib
  from jaxvssl import methods as methods_lib
  from jaxvssl import optim, parallel
  from jaxvssl import state as state_lib
  from jaxvssl import train
  from jaxvssl.inputs import device as input_device

  spec = (TINY_METHODS if tiny else PAPER_METHODS)[method_name]
  spec = os.path.join(ROOT, spec) + ''.join(f'+{o}' for o in options)
  overrides = [f'model.dtype={dtype}']
  if batch:
    overrides.append(f'batch_size={batch}')
  if tiny:
    overrides.append('data.crop_size=16')
  config = config_lib.load_config(spec, overrides)
  if tiny and not config.model.backbone.startswith('mvit'):
    # 1/16 width for the CNNs; mvit_tiny is already 16 channels wide (1/16 of it would be one
    # channel, on which XLA's CPU compiler failed a check in bf16: jax 0.10.2, 2026-11-28).
    config = config_lib.load_config(spec, overrides + ['model.width_multiplier=0.0625'])
  mesh = parallel.make_mesh()
  method = methods_lib.build(config, mesh.devices.size)
  tx, schedule = optim.make_optimizer(config), optim.make_schedule(config)
  rng = np.random.default_rng(0)
  local = {
    k: rng.standard_normal(v.shape).astype(np.asarray(v).dtype)
    if np.asarray(v).dtype.kind == 'f'
    else np.zeros(v.shape, np.asarray(v).dtype)
    for k, v in method.example_batch(config.batch_size).items()
  }
  batch_arrays = parallel.global_batch(local, mesh)
  replicated = parallel.replicated_sharding(mesh)
  prepare = lambda b: input_device.prepare_batch(b, config.data)
  init_fn = lambda b: state_lib.init_train_state(method, tx, prepare(b), seed=config.seed)
  abstract = jax.eval_shape(init_fn, batch_arrays)
  state_sharding = jax.tree_util.tree_map(lambda _: replicated, abstract)
  ts = jax.jit(init_fn, out_shardings=state_sharding)(batch_arrays)
  step_fn = jax.jit(
    train.make_train_step(method, tx, schedule, prepare),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )
  compiled = step_fn.lower(ts, batch_arrays).compile()
  costs = compiled_costs(compiled)
  ts, times = _timed(compiled, ts, batch_arrays, warmup=warmup, repeats=repeats)
  wait = _data_wait(config, method, step_fn, ts, data_wait_steps) if data_wait_steps else None
  return _row(
    'method',
    method_name,
    dtype,
    config.batch_size,
    times,
    costs,
    data_wait=wait,
    extra=dict(config=os.path.relpath(spec, ROOT), backbone=config.model.backbone),
  )


def run_paper(args: argparse.Namespace) -> dict[str, Any]:
  import jax

  rows = []
  for dtype in args.dtypes:
    for name in args.backbones:
      rows.append(
        bench_paper_backbone(
          name, dtype, args.paper_batch, args.tiny, args.remat, args.warmup, args.repeats
        )
      )
      print(format_paper_row(rows[-1]), flush=True)
    for name in args.methods:
      rows.append(
        bench_paper_method(
          name,
          dtype,
          args.tiny,
          args.method_batch,
          args.options,
          args.warmup,
          args.repeats,
          args.data_wait_steps,
        )
      )
      print(format_paper_row(rows[-1]), flush=True)
  return dict(
    paper=rows,
    tiny=args.tiny,
    jax=jax.__version__,
    backend=jax.default_backend(),
    device=jax.devices()[0].device_kind,
    devices=jax.device_count(),
  )


def format_paper_row(r: dict[str, Any]) -> str:
  """One line: kind name dtype | ms, clips/s, GFLOP/step, TFLOP/s, MFU, memory, data wait."""
  gb = lambda b: f'{b / 2**30:.2f} GiB' if b else '-'
  pct = lambda v: f'{100 * v:.1f} %' if v is not None else '-'
  flops = f'{r["flops"] / 1e9:.4g}' if r['flops'] else '-'
  tflops = f'{r["achieved_flops_per_s"] / 1e12:.3g}' if r['achieved_flops_per_s'] else '-'
  return (
    f'{r["kind"]:8s} {r["name"]:16s} {r["dtype"]:9s} batch {r["clips"]:4d} | '
    f'{r["step_ms"]:9.1f} ms {r["clips_per_s"]:9.1f} clips/s {flops:>9s} GFLOP {tflops:>7s} '
    f'TFLOP/s MFU {pct(r["mfu"]):>7s} | compiled {gb(r["compiled_memory_bytes"])}, peak '
    f'{gb(r["device_peak_bytes"])} | data wait {pct(r["data_wait"])}'
  )


# ------------------------------------------------------------------------------------------------
# Reporting and the interleaving driver.


def layer_key(row: dict[str, Any]) -> str:
  keys = ('x', 'kernel', 'strides', 'padding', 'groups', 'input_grad')
  return json.dumps([row.get(k) for k in keys])


def print_layers(variants: dict[str, list[dict[str, Any]]]) -> None:
  """One row per layer shape: fwd and fwd+bwd median [min-max] of every variant."""
  names = list(variants)
  base = variants[names[0]]
  header = f'{"layer, input NTHWC, kernel, stride":62s} {"n":>2s}'
  for v in names:
    header += f' | {v + " fwd":>22s} {v + " fwd+bwd":>24s}'
  print(header)
  for row in base:
    label = row['names'][0].removeprefix('backbone/').removesuffix('/conv')
    shape = 'x'.join(map(str, row['kernel'][:-2]))
    text = (
      f'{label[:22]:22s} {str(tuple(row["x"])):22s} {shape:6s} {str(tuple(row["strides"])):9s}'
      f' {row.get("count", 1):2d}'
    )
    for v in names:
      match = [r for r in variants[v] if layer_key(r) == layer_key(row)]
      r = match[0] if match else {}
      impl = f'({r["impl"]})' if r.get('impl') else ''
      text += f' | {fmt(r.get("fwd")):>22s} {fmt(r.get("fwd_bwd")):>17s}{impl:>7s}'
    print(text, flush=True)


def _summary(values: list[float]) -> str:
  return f'{np.median(values):9.1f} [{min(values):.1f}-{max(values):.1f}]'


def drive(args: argparse.Namespace) -> None:
  """Interleaved fresh-process runs: xla, auto, torch, xla, auto, torch, ..."""
  variants = [('jax xla', ['--impl=xla']), ('jax auto', ['--impl=auto'])]
  torch_script = os.path.join(ROOT, 'scripts', 'bench_torch_reference.py')
  if not args.no_torch:
    variants.append(('torch', None))
  common = [
    f'--parts={",".join(args.parts)}',
    f'--repeats={args.repeats}',
    f'--warmup={args.warmup}',
    f'--large_batch={args.large_batch}',
    f'--large_repeats={args.large_repeats}',
    f'--config={args.config}',
  ]
  results: dict[str, list[dict[str, Any]]] = {v: [] for v, _ in variants}
  for run in range(args.runs):
    for name, extra in variants:
      with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as f:
        out = f.name
      if extra is None:
        cmd = [sys.executable, torch_script] + common + [f'--json={out}']
      else:
        cmd = [sys.executable, os.path.abspath(__file__)] + extra + common + [f'--json={out}']
      load = os.getloadavg()[0]
      print(
        f'[run {run + 1}/{args.runs}] {name} (load {load:.2f}): {" ".join(cmd[1:])}', flush=True
      )
      subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL if args.quiet else None)
      with open(out) as fh:
        results[name].append(json.load(fh))
      os.unlink(out)
  if args.save:
    with open(args.save, 'w') as fh:
      json.dump(results, fh, indent=1)

  print(
    f'\n=== medians over {args.runs} interleaved runs (each run: median of its repeats), ms ==='
  )
  ref = 'torch' if 'torch' in results else None
  if 'step' in args.parts:
    print(f'tiny MoCo step ({args.config}):')
    for name in results:
      meds = [r['step']['median'] for r in results[name]]
      ratio = ''
      if ref and name != ref:
        ratio = (
          f'  x{np.median(meds) / np.median([r["step"]["median"] for r in results[ref]]):.2f} torch'
        )
      print(f'  {name:9s} {_summary(meds)}{ratio}')
  if 'large' in args.parts:
    for net in LARGE:
      print(f'{net} fwd+bwd, batch {args.large_batch} x 16x112x112:')
      for name in results:
        meds = [r['large'][net]['median'] for r in results[name]]
        ratio = ''
        if ref and name != ref:
          ratio = f'  x{np.median(meds) / np.median([r["large"][net]["median"] for r in results[ref]]):.2f} torch'
        print(f'  {name:9s} {_summary(meds)}{ratio}')
  if 'layers' in args.parts:
    print("tiny backbone conv layers (median over runs of each run's median; [min-max] over runs):")
    merged = {}
    for name, runs in results.items():
      rows = []
      for row in runs[0]['layers']:
        same = [next(r for r in run['layers'] if layer_key(r) == layer_key(row)) for run in runs]
        rows.append(
          dict(
            row,
            fwd=_over_runs([r['fwd'] for r in same]),
            fwd_bwd=_over_runs([r['fwd_bwd'] for r in same]),
          )
        )
      merged[name] = rows
    print_layers(merged)


def _over_runs(per_run: list[dict[str, Any]]) -> dict[str, Any]:
  meds = [s['median'] for s in per_run]
  return dict(median=float(np.median(meds)), min=float(min(meds)), max=float(max(meds)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument('--impl', default='auto', choices=('auto', 'xla'))
  p.add_argument('--parts', default=','.join(PARTS), help=f'comma-separated subset of {PARTS}')
  p.add_argument('--skip_large', action='store_true', help='leave out the slow 112 px networks')
  p.add_argument('--config', default='configs/moco.py:tiny')
  p.add_argument(
    '--set', action='append', default=[], metavar='KEY=VALUE', help='step: a config override'
  )
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--repeats', type=int, default=10)
  p.add_argument('--large_batch', type=int, default=8)
  p.add_argument('--large_repeats', type=int, default=2)
  p.add_argument('--json', default='', help='write the results here')
  p.add_argument('--with-torch', dest='with_torch', action='store_true', help='interleaving driver')
  p.add_argument('--no_torch', action='store_true', help='driver without the torch variant')
  p.add_argument('--runs', type=int, default=3, help='driver: runs per variant')
  p.add_argument('--save', default='', help="driver: write all runs' results here")
  p.add_argument('--quiet', action='store_true', help='driver: hide the per-run output')
  p.add_argument('--paper', action='store_true', help='the accelerator benchmark (see above)')
  p.add_argument('--tiny', action='store_true', help='--paper at CPU-smoke-test size (seconds)')
  p.add_argument('--dtypes', default='float32,bfloat16', help='--paper: compute dtypes')
  p.add_argument('--backbones', default=','.join(PAPER_BACKBONES), help='--paper: backbones')
  p.add_argument('--methods', default=','.join(PAPER_METHODS), help='--paper: methods')
  p.add_argument('--paper_batch', type=int, default=8, help='--paper: backbone batch (clips)')
  p.add_argument('--method_batch', type=int, default=0, help="--paper: 0 = the config's batch")
  p.add_argument('--remat', action='store_true', help='--paper: remat every backbone stage')
  p.add_argument('--options', default='', help="--paper: config options, e.g. 'device_input'")
  p.add_argument('--data_wait_steps', type=int, default=0, help='--paper: steps fed by data')
  args = p.parse_args(argv)
  split = lambda text: tuple(x for x in text.split(',') if x)
  args.dtypes, args.backbones, args.methods = (
    split(args.dtypes),
    split(args.backbones),
    split(args.methods),
  )
  args.options = split(args.options)
  args.set = tuple(args.set)
  if args.tiny:
    args.paper_batch = min(args.paper_batch, 2)
    args.method_batch = args.method_batch or 8
    args.warmup, args.repeats = min(args.warmup, 1), min(args.repeats, 2)
  for given, known, what in (
    (args.backbones, PAPER_BACKBONES, 'backbones'),
    (args.methods, PAPER_METHODS, 'methods'),
    (args.dtypes, ('float32', 'bfloat16'), 'dtypes'),
  ):
    if set(given) - set(known):
      p.error(f'unknown {what} {sorted(set(given) - set(known))}; choose from {tuple(known)}')
  args.parts = tuple(x for x in args.parts.split(',') if x)
  if args.skip_large:
    args.parts = tuple(x for x in args.parts if x != 'large')
  unknown = set(args.parts) - set(PARTS)
  if unknown:
    p.error(f'unknown parts {sorted(unknown)}; choose from {PARTS}')
  return args


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  if args.with_torch or args.no_torch:
    drive(args)
    return
  if args.paper:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_pipeline
    result = run_paper(args)
  else:
    result = run_jax(args)
  if args.json:
    with open(args.json, 'w') as fh:
      json.dump(result, fh)


if __name__ == '__main__':
  sys.path.insert(0, ROOT)
  main()

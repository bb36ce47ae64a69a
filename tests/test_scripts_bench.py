"""Smoke tests of the benchmark scripts' `--tiny` modes (so that they cannot rot).

Figures are not checked (speed is measured by the scripts, never asserted in tests); the runs
must finish and report every field the docs quote.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args, tmp_path):
  out = tmp_path / 'result.json'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  subprocess.run(
    [sys.executable, os.path.join(ROOT, 'scripts', script), *args, f'--json={out}'],
    check=True,
    cwd=ROOT,
    env=env,
    timeout=1800,  # compilation dominates; a loaded 2-core machine is slow
  )
  with open(out) as f:
    return json.load(f)


def _check_paper_rows(rows):
  for row in rows:
    if 'skipped' in row:
      continue
    assert row['step_ms'] > 0 and row['clips_per_s'] > 0, row
    assert row['flops'] and row['flops'] > 0, row
    # No peak FLOP/s is known for a CPU: MFU is not reported rather than invented.
    assert row['mfu'] is None, row


def test_bench_step_paper_tiny(tmp_path):
  result = _run(
    'bench_step.py',
    '--paper',
    '--tiny',
    # A few rows (each compiles a network): bf16, a conv net, attention and a full method step.
    '--dtypes=bfloat16',
    '--backbones=r2plus1d18,cacl_transformer',
    '--methods=moco',
    tmp_path=tmp_path,
  )
  rows = result['paper']
  assert [(r['kind'], r['name'], r['dtype']) for r in rows] == [
    ('backbone', 'r2plus1d18', 'bfloat16'),
    ('backbone', 'cacl_transformer', 'bfloat16'),
    ('method', 'moco', 'bfloat16'),
  ]
  _check_paper_rows(rows)
  assert all(r['compiled_memory_bytes'] > 0 for r in rows)


def test_bench_step_step_part_with_overrides(tmp_path):
  """The CPU step part on the default tiny MoCo config with `--set` applied, and its FLOPs."""
  result = _run(
    'bench_step.py',
    '--parts=step',
    '--warmup=0',
    '--repeats=1',
    '--set=batch_size=8',
    tmp_path=tmp_path,
  )
  step = result['step']
  assert step['batch'] and all(shape[0] == 8 for shape in step['batch'].values()), step
  assert step['median'] > 0 and step['gflops'] > 0 and step['compile_s'] > 0


def test_bench_pipeline_tiny_modes(tmp_path):
  result = _run(
    'bench_pipeline.py',
    '--tiny',
    '--modes=host,uint8,device_augment',
    '--device_time',
    tmp_path=tmp_path,
  )
  modes = {m['mode']: m for m in result['modes']}
  assert set(modes) == {'host', 'uint8', 'device_augment'}
  # float32 -> uint8 is a quarter of the bytes; the augmentation parameters add a few.
  assert modes['uint8']['bytes_per_clip'] * 4 == modes['host']['bytes_per_clip']
  assert 0 < modes['device_augment']['bytes_per_clip'] - modes['uint8']['bytes_per_clip'] < 100
  assert all(m['clips_per_cpu_s'] > 0 and m['device_ms_per_batch'] > 0 for m in modes.values())


def test_bench_pipeline_a_methods_own_input(tmp_path):
  """`--config`: rate_order's views and segment extras through its own `train_dataset`."""
  result = _run(
    'bench_pipeline.py',
    '--tiny',
    '--config=configs/rate_order.py:tiny',
    '--set=data.crop_size=24',
    tmp_path=tmp_path,
  )
  (mode,) = result['modes']
  assert mode['mode'] == 'configs/rate_order.py:tiny data.crop_size=24' and mode['batch_size'] == 2
  assert mode['cpu_s_per_batch'] > 0 and mode['clips_per_cpu_s'] > 0 and mode['bytes_per_clip'] > 0


def test_bench_torch_reference_paper_tiny(tmp_path):
  pytest.importorskip('torch')
  result = _run(
    'bench_torch_reference.py',
    '--paper',
    '--tiny',
    '--dtypes=float32,bfloat16',
    '--backbones=c3d,r3d18,s3d,cacl_transformer',
    '--methods=moco,scvrl',
    tmp_path=tmp_path,
  )
  rows = {(r['name'], r['dtype']): r for r in result['paper']}
  assert 'skipped' in rows[('s3d', 'float32')] and 'skipped' in rows[('scvrl', 'bfloat16')]
  assert 'skipped' not in rows[('moco', 'bfloat16')]
  _check_paper_rows(result['paper'])

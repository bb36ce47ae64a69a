"""Install paths: the TensorFlow wheel each platform gets, the accelerator extras, and the choice
`scripts/setup_env.sh` makes from `nvidia-smi`, the PCI bus or JAXVSSL_ACCELERATOR (dry run:
nothing is installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
  tomllib = pytest.importorskip('tomllib')  # Python >= 3.11
  return tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']


# platform -> the TensorFlow distribution with wheels there for 2.18-2.21 (checked with
# `pip index versions tensorflow-cpu|tensorflow --platform P --python-version 3.10|3.12
# --only-binary=:all:`, docs/install.md).
PLATFORMS = {
  'linux x86_64': ({'sys_platform': 'linux', 'platform_machine': 'x86_64'}, 'tensorflow-cpu'),
  'linux aarch64': ({'sys_platform': 'linux', 'platform_machine': 'aarch64'}, 'tensorflow'),
  'macOS arm64': ({'sys_platform': 'darwin', 'platform_machine': 'arm64'}, 'tensorflow'),
  'windows': ({'sys_platform': 'win32', 'platform_machine': 'AMD64'}, 'tensorflow-cpu'),
}


def _requirements() -> list[Requirement]:
  return [Requirement(r) for r in _project()['dependencies']]


@pytest.mark.parametrize('platform', sorted(PLATFORMS))
def test_each_platform_gets_the_one_tensorflow_that_has_wheels_there(platform):
  environment, expected = PLATFORMS[platform]
  chosen = [
    r.name
    for r in _requirements()
    if r.name.startswith('tensorflow') and r.name != 'tensorflow-datasets'
    if r.marker is None or r.marker.evaluate(environment)
  ]
  assert chosen == [expected]


def test_tensorflow_pins_agree_and_jax_extras_follow_the_jax_pin():
  tf = {str(r.specifier) for r in _requirements() if r.name in ('tensorflow', 'tensorflow-cpu')}
  assert len(tf) == 1
  (jax,) = [r for r in _requirements() if r.name == 'jax']
  extras = _project()['optional-dependencies']
  for name in ('cuda12', 'cuda13', 'tpu'):
    (req,) = [Requirement(r) for r in extras[name]]
    assert (req.name, req.extras, req.specifier) == ('jax', {name}, jax.specifier)
  assert any(r.name == 'etils' and 'epath' in r.extras for r in _requirements())


def _setup(tmp_path, smi_output=None, smi_rc=0, tpu_device=None, accelerator=None):
  """Runs setup_env.sh as a dry run with a fake `nvidia-smi` and a fake PCI bus."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir(exist_ok=True)
  smi = bin_dir / 'nvidia-smi'
  smi.write_text(f'#!/bin/sh\ncat <<"X"\n{smi_output or ""}\nX\nexit {smi_rc}\n')
  smi.chmod(0o755)
  pci = tmp_path / 'pci'
  for i, device in enumerate(['0x0042'] + ([tpu_device] if tpu_device else [])):
    d = pci / f'0000:00:0{i}.0'
    d.mkdir(parents=True, exist_ok=True)
    (d / 'vendor').write_text('0x1ae0\n')  # Google; 0x0042 is gVNIC, a network card
    (d / 'device').write_text(device + '\n')
  env = {
    'PATH': f'{bin_dir}:/usr/bin:/bin',
    'JAXVSSL_SETUP_DRY_RUN': '1',
    'JAXVSSL_PCI_DEVICES': str(pci),
  }
  if accelerator:
    env['JAXVSSL_ACCELERATOR'] = accelerator
  return subprocess.run(
    ['bash', str(ROOT / 'scripts' / 'setup_env.sh')], env=env, capture_output=True, text=True
  )


SMI = '| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: {} |'


@pytest.mark.parametrize(
  'smi, rc, tpu, accelerator, extras',
  [
    (SMI.format('12.4'), 0, None, None, 'test,cuda12'),
    (SMI.format('13.0'), 0, None, None, 'test,cuda13'),
    (SMI.format('11.8'), 0, None, None, 'test'),  # too old a driver for any jax CUDA build
    ('', 9, '0x0063', None, 'test,tpu'),  # nvidia-smi fails (no GPU); a TPU v5e chip
    ('', 9, None, None, 'test'),  # a Google network card is no TPU
    (SMI.format('12.4'), 0, None, 'cpu', 'test'),  # the variable wins
    ('', 9, None, 'tpu', 'test,tpu'),
  ],
)
def test_setup_env_picks_the_accelerator_extra(tmp_path, smi, rc, tpu, accelerator, extras):
  result = _setup(tmp_path, smi, rc, tpu, accelerator)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == f'pip install -e .[{extras}]'


def test_setup_env_refuses_an_unknown_accelerator(tmp_path):
  result = _setup(tmp_path, accelerator='rocm')
  assert result.returncode == 2 and 'use auto, cpu, cuda12, cuda13 or tpu' in result.stderr

"""Where a table was made, for results.json's header: the git commit and the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

from jaxvssl import errors


def git_commit(directory: str | None = None) -> str:
  """`git rev-parse HEAD` of the jaxvssl checkout, `-dirty` when tracked files differ."""
  directory = directory or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, GIT_OPTIONAL_LOCKS='0')  # never touches the index
  try:
    head = subprocess.run(
      ['git', 'rev-parse', 'HEAD'], cwd=directory, capture_output=True, text=True, timeout=60
    )
    if head.returncode:
      return 'unknown (not a git checkout)'
    status = subprocess.run(
      ['git', 'status', '--porcelain', '--untracked-files=no'],
      cwd=directory,
      capture_output=True,
      text=True,
      env=env,
      timeout=60,
    )
  except (OSError, subprocess.SubprocessError) as e:
    return f'unknown ({errors.summary(e)})'
  return head.stdout.strip() + ('-dirty' if status.stdout.strip() else '')


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown'


def machine_info(python: str = sys.executable) -> dict[str, Any]:
  """CPU model, core count, Python, jax version and the backend the subprocesses get.

  The backend is probed in a subprocess, so this runner never claims an accelerator.
  """
  try:
    jax_version = importlib.metadata.version('jax')
  except importlib.metadata.PackageNotFoundError:
    jax_version = 'not installed'
  probe = 'import jax; d = jax.devices(); print(jax.default_backend(), len(d), d[0].device_kind)'
  try:
    result = subprocess.run(
      [python, '-c', probe], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    backend, devices, kind = result.stdout.strip().splitlines()[-1].split(' ', 2)
  except (OSError, subprocess.SubprocessError, ValueError, IndexError):
    backend, devices, kind = 'unknown', '0', 'unknown'
  return {
    'cpu': cpu_model(),
    'cores': os.cpu_count(),
    'usable_cores': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None,
    'python': platform.python_version(),
    'jax': jax_version,
    'backend': backend,
    'devices': int(devices) if devices.isdigit() else 0,
    'device_kind': kind,
  }

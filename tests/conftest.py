"""Test set-up: 8 fake CPU devices (before JAX is imported) and TF kept off accelerators."""

import os

# Must happen before the first `import jax` anywhere in the test session: tests of the sharded
# step compare 1 device with 8 fake CPU devices.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

# Many tests compile the same tiny programs (a train step, an init) more than once: a persistent
# compilation cache turns the repeats into disk reads.
jax.config.update(
  'jax_compilation_cache_dir', os.environ.get('JAXVSSL_TEST_CACHE', '/tmp/jaxvssl_test_jax_cache')
)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)


@pytest.fixture(autouse=True)
def _restore_working_directory():
  """Every test starts in the directory the suite started in: config specs such as
  'configs/moco.py' are relative to it, and a test that leaves another cwd behind would fail
  every later test that loads one."""
  cwd = os.getcwd()
  yield
  if os.getcwd() != cwd:
    os.chdir(cwd)

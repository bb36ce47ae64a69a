"""scripts/order_signal_probe.py: its object features and its held-out MLP accuracy."""

import importlib.util
import os

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
  'order_signal_probe',
  os.path.join(os.path.dirname(__file__), '..', 'scripts', 'order_signal_probe.py'),
)
probe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe)


def _moving_square(positions, size=16, side=3):
  """One clip [1, T, size, size, 3]: a bright square whose top-left corner is at `positions`."""
  clip = np.zeros((1, len(positions), size, size, 3), np.float32)
  for t, (y, x) in enumerate(positions):
    clip[0, t, y : y + side, x : x + side] = 1.0
  return clip


def test_centroid_and_displacement_track_the_object():
  positions = [(2, 1), (2, 4), (2, 7), (2, 10)]
  feats = probe.object_features(_moving_square(positions), 'centroid')[0]
  t = len(positions)
  cx, cy = feats[:t], feats[t : 2 * t]
  np.testing.assert_allclose(cx * 16, [x + 1 for _, x in positions], atol=1e-4)  # square centre
  np.testing.assert_allclose(cy * 16, [y + 1 for y, _ in positions], atol=1e-4)
  disp = probe.object_features(_moving_square(positions), 'displacement')[0]
  np.testing.assert_allclose(disp[: t - 1] * 16, [3, 3, 3], atol=1e-4)
  np.testing.assert_allclose(disp[t - 1 : 2 * t - 2], 0, atol=1e-6)


def test_held_out_accuracy_finds_a_signal_and_not_a_missing_one():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(800, 6)).astype(np.float32)
  signal = (x[:, 0] > 0).astype(np.int32)
  found = probe.held_out_accuracy(x, signal, 2, epochs=5)
  assert found['held_out'] > 0.9
  noise = rng.integers(0, 2, size=800).astype(np.int32)
  assert probe.held_out_accuracy(x, noise, 2, epochs=5)['held_out'] < 0.65

"""Is rate_order's segment order decodable from its input clips? A bound that needs no backbone.

Draws clips from a rate_order config's own training pipeline (the shuffled multi-rate segments the
order head sees, with their order classes), reduces each frame to hand-made object features, and
fits a small MLP (2 x 256, AdamW) on three quarters of the clips; prints its accuracy on the held-out
quarter against chance (1 / n!). Features, per frame of a [B, T, H, W, C] clip:
  centroid       the (x, y) centroid and log mass of the pixels that differ most (top 10 %) from
                 the clip's temporal median (the moving object against its static background)
  displacement   the centroid's step between consecutive frames (translation-invariant, as what
                 a convolution + global pooling can compute), and the log mass
If these features reach well above chance while the order head of a training run stays at chance,
the signal is in the input and the backbone does not extract it (docs/methods/rate_order.md).

  python scripts/order_signal_probe.py --data_dir data/tfds --features displacement
  python scripts/order_signal_probe.py --data_dir data/tfds --set rate_order.num_segments=2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FEATURES = ('centroid', 'displacement')


def object_features(clips: np.ndarray, features: str, top_fraction: float = 0.1) -> np.ndarray:
  """Per-clip object features of `clips` [B, T, H, W, C] -> [B, F] (module doc).

  centroid: F = 3 T (x, y in [0, 1) of the frame, then log mass); displacement: F = 3 T - 2.
  """
  clips = np.asarray(clips, np.float32)
  b, t, h, w, _ = clips.shape
  motion = np.abs(clips - np.median(clips, axis=1, keepdims=True)).sum(-1)  # [B, T, H, W]
  cut = np.quantile(motion.reshape(b, t, -1), 1.0 - top_fraction, axis=-1)[..., None, None]
  motion = np.where(motion > cut, motion, 0.0)
  mass = motion.sum((2, 3)) + 1e-6
  ys, xs = np.mgrid[0:h, 0:w]
  cx = (motion * (xs / w)).sum((2, 3)) / mass
  cy = (motion * (ys / h)).sum((2, 3)) / mass
  if features == 'centroid':
    parts = [cx, cy, np.log(mass)]
  elif features == 'displacement':
    parts = [np.diff(cx, axis=1), np.diff(cy, axis=1), np.log(mass)]
  else:
    raise ValueError(f'features={features!r}; choose one of {FEATURES}')
  return np.concatenate(parts, axis=1)


def held_out_accuracy(
  x: np.ndarray, y: np.ndarray, num_classes: int, *, epochs: int = 25, seed: int = 0
) -> dict[str, float]:
  """Fit an MLP (2 x 256, ReLU, AdamW lr 1e-3, batch 128) on the first 3/4 of (x [N, F], y [N])
  and return its final train and held-out accuracy (no choice is made on the held-out part)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  n = len(x) * 3 // 4
  mean, std = x[:n].mean(0), x[:n].std(0) + 1e-6
  x = ((x - mean) / std).astype(np.float32)
  sizes = (x.shape[1], 256, 256, num_classes)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
  params = [
    (jax.random.normal(k, (a, c)) / math.sqrt(a), jnp.zeros(c))
    for k, a, c in zip(keys, sizes, sizes[1:])
  ]

  def logits_fn(params, inputs):
    for w, b in params[:-1]:
      inputs = jax.nn.relu(inputs @ w + b)
    w, b = params[-1]
    return inputs @ w + b

  def loss_fn(params, inputs, labels):
    logits = logits_fn(params, inputs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  opt = optax.adamw(1e-3, weight_decay=1e-3)
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, inputs, labels):
    grads = jax.grad(loss_fn)(params, inputs, labels)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = rng.permutation(n)
    for i in range(0, n, 128):
      params, opt_state = step(params, opt_state, x[order[i : i + 128]], y[order[i : i + 128]])
  accuracy = lambda a, b: float(np.mean(np.argmax(logits_fn(params, a), -1) == b))
  return {'train': accuracy(x[:n], y[:n]), 'held_out': accuracy(x[n:], y[n:])}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', default='configs/rate_order.py:tiny')
  parser.add_argument('--data_dir', default='data/tfds')
  parser.add_argument('--set', action='append', default=[], help='config override, key=value')
  parser.add_argument('--features', choices=FEATURES, default='centroid')
  parser.add_argument('--batches', type=int, default=200, help='batches of 64 clips to draw')
  parser.add_argument('--epochs', type=int, default=25)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)

  from jaxvssl import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxvssl import methods  # pylint: disable=g-import-not-at-top

  # The order task alone: no key clips to decode (contrastive_weight=0), the query as trained.
  overrides = (f'data.data_dir={args.data_dir}', 'rate_order.contrastive_weight=0', *args.set)
  config = config_lib.load_config(args.config, overrides)
  method = methods.build(config, 1)
  dataset = method.train_dataset(
    global_batch_size=64, seed=args.seed, process_index=0, process_count=1, start_step=0
  )
  x, y = [], []
  for batch in dataset.take(args.batches).as_numpy_iterator():
    x.append(object_features(batch['query'], args.features))
    y.append(batch['segments_order_class'])
  x, y = np.concatenate(x), np.concatenate(y).astype(np.int32)
  num_classes = math.factorial(config.rate_order.num_segments)
  result = held_out_accuracy(x, y, num_classes, epochs=args.epochs, seed=args.seed)
  result.update(
    clips=len(x), chance=1.0 / num_classes, features=args.features, overrides=list(args.set)
  )
  print(json.dumps(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())

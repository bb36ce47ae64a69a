"""Optimisers and learning-rate schedules, all from optax.

The peak learning rate follows the linear scaling rule: `base_learning_rate * batch_size /
reference_batch_size`, so a paper's (lr, batch) pair transfers to another global batch. The
resolved value is printed at the start of training.
"""

from __future__ import annotations

import ml_collections
import optax


def peak_learning_rate(config: ml_collections.ConfigDict) -> float:
  o = config.optim
  if not o.scale_learning_rate:
    return float(o.base_learning_rate)
  return float(o.base_learning_rate) * config.batch_size / o.reference_batch_size


def make_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Warmup (linear) followed by cosine, step or constant decay over `config.num_steps`."""
  o = config.optim
  peak = peak_learning_rate(config)
  warmup = int(o.warmup_steps)
  decay_steps = max(1, config.num_steps - warmup)
  if o.schedule == 'cosine':
    main = optax.cosine_decay_schedule(peak, decay_steps, alpha=o.final_fraction)
  elif o.schedule == 'step':
    boundaries = {int(b * config.num_steps) - warmup: o.step_factor for b in o.step_boundaries}
    main = optax.piecewise_constant_schedule(peak, boundaries)
  else:
    main = optax.constant_schedule(peak)
  if warmup == 0:
    return main
  ramp = optax.linear_schedule(peak * o.warmup_init_fraction, peak, warmup)
  return optax.join_schedules([ramp, main], [warmup])


def _decay_mask(params):
  """Weight decay on kernels only: biases, norm scales and 1-d parameters are excluded."""
  import jax  # pylint: disable=g-import-not-at-top

  return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimizer of `config.optim`, with the schedule of `make_schedule`."""
  o = config.optim
  schedule = make_schedule(config)
  chain = []
  if o.grad_clip_norm > 0:
    chain.append(optax.clip_by_global_norm(o.grad_clip_norm))
  if o.name == 'sgd':
    if o.weight_decay > 0:
      chain.append(optax.add_decayed_weights(o.weight_decay, mask=_decay_mask))
    chain.append(optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov))
  elif o.name == 'adam':
    if o.weight_decay > 0:
      chain.append(optax.add_decayed_weights(o.weight_decay, mask=_decay_mask))
    chain.append(optax.adam(schedule, b1=o.b1, b2=o.b2))
  elif o.name == 'adamw':
    chain.append(
      optax.adamw(schedule, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay, mask=_decay_mask)
    )
  else:  # validated in config.check_values
    raise ValueError(f'config.optim.name={o.name!r} is unknown')
  return optax.chain(*chain)

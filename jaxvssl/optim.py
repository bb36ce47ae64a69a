"""Optimisers and learning-rate schedules, all from optax.

The peak learning rate follows the linear scaling rule: `base_learning_rate * batch_size /
reference_batch_size`, so a paper's (lr, batch) pair transfers to another global batch. The
resolved value is printed at the start of training.

Per-subtree learning rates: `config.optim.lr_multipliers` maps a TOP-LEVEL parameter subtree name
(a key of the method's params, e.g. CACL's 'transformer' and 'transformer_head') to a factor on
the learning rate, e.g. `--config.optim.lr_multipliers.transformer=0.01`. It is an
`optax.partition` (formerly `optax.multi_transform`) appended to the chain that scales the final
update of each labelled subtree, which is exactly a per-group learning rate (as in PyTorch's
parameter groups): momentum buffers and Adam moments are of the unscaled gradients, and the
weight decay of that subtree is scaled with it. Empty (the default) leaves the chain, and so the
optimizer state, exactly as without the option.
"""

from __future__ import annotations

import ml_collections
import optax

from jaxvssl.errors import ConfigError

# The label of every parameter no lr multiplier names.
DEFAULT_LABEL = '__default__'


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


def lr_multiplier_labels(multipliers: dict[str, float]):
  """`params -> labels`: each top-level subtree named in `multipliers` gets its name as the label
  of all its leaves; every other leaf gets `DEFAULT_LABEL`.

  Raises:
    ConfigError: a name that is no top-level subtree of the params (a typo must not silently
      train at the full learning rate); the message lists the names there are.
  """
  import jax  # pylint: disable=g-import-not-at-top

  def labels(params):
    unknown = sorted(set(multipliers) - set(params))
    if unknown:
      raise ConfigError(
        f'config.optim.lr_multipliers.{unknown[0]}: no top-level parameter subtree has that '
        f'name; the params have {sorted(params)}'
      )

    def label_all(sub, label):
      return jax.tree_util.tree_map(lambda _: label, sub)

    return type(params)(
      {
        name: label_all(sub, name if name in multipliers else DEFAULT_LABEL)
        for name, sub in params.items()
      }
    )

  return labels


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimizer of `config.optim`, with the schedule of `make_schedule`.

  With `config.optim.lr_multipliers`, the named subtrees' updates are scaled by their factor
  (`optax.partition`, module docstring).
  """
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
  multipliers = {name: float(m) for name, m in o.lr_multipliers.items()}
  if multipliers:
    transforms = {name: optax.scale(m) for name, m in multipliers.items()}
    transforms[DEFAULT_LABEL] = optax.identity()
    chain.append(optax.partition(transforms, lr_multiplier_labels(multipliers)))
  return optax.chain(*chain)

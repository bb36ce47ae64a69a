"""`mlfo`: multi-level feature optimization.

Paper: "Enhancing Self-supervised Video Representation Learning via Multi-level Feature
Optimization" (Qian et al., ICCV 2021); released code `shvdiwnkozbw/Video-Representation-via-
Multi-level-Optimization`. No momentum encoder: one network sees every view.

Views (one 32-frame window at `data.stride` s): clip `a` = its first 16 frames, clip `b` = the
last 16 (the positive pair), `long` = the whole window subsampled to 16 frames (stride 2 s), each
with its own spatial augmentation. Levels: low = stage-2, mid = stage-3, high = stage-4 output of
the backbone (R3D with the authors' `stem='mlfo'`, or S3D), each with a per-timestep head
(1x1x1 conv MLP C -> C -> embed_dim, with BatchNorm) on the spatially pooled map [B, T, C];
a level's embedding z [B, embed_dim] is the temporal mean of the head's outputs.

  L = L_ins + L_sem                                   high level (eq. 2-5)
      + g(step) * sum_{r in graph_levels} w_r L_mul_r  graph constraint (eq. 6-10)
      + retrieval_weight * sum_{r in retrieval_levels} w_r L_ret_r   timestamp retrieval (eq. 13)
      + aug_weight * sum_{r in aug_levels} L_aug_r    feature-level temporal modelling (eq. 11-12)

  L_ins: `objectives.mlfo_instance_loss` of the high-level z^a, z^b (tau = `temperature`).
  L_sem: prototype scores z P (L2-normalised z and columns of P [embed_dim, K]), swapped
      prediction of Sinkhorn targets (`objectives.swapped_prediction_loss`). From step
      `queue_start_step` on (and once the queue is full) each view's Sinkhorn runs over the batch
      plus a queue of that view's `queue_size` previous RAW score rows, as the released code does.
  L_mul: `objectives.graph_loss` of level r's z against the stop-gradient target graph
      `objectives.graph_targets` of the high-level z and Sinkhorn targets; g(step) = 0 for the
      first `graph_start_fraction` of training (the two-stage schedule), 1 after.
  L_ret: `objectives.timestamp_retrieval_loss`, with the released code's construction: the maps
      of `a` and `b` at level r (T_r timesteps each) are pooled to T_r / 2 timesteps each and
      concatenated, so timestep t of the result covers the same frames as timestep t of `long`.
  L_aug: the level's maps of `a` and `b` and their temporal augmentations (`aug_ops`, applied to
      the FEATURE maps) go through a motion excitation module, a spatio-temporal mean and a
      2-layer MLP; `objectives.temporal_augmentation_loss` with the augmentations as negatives.
      `input_aug=True` is Table 3's conventional temporal modelling instead: the `aug_ops` are
      applied to the INPUT clips `a` and `b`, which go through the backbone and the high-level
      head, and their embeddings are the negatives of the high-level z (metric 'aug_loss/input').

w = `level_weights` (high, mid, low). Every option with its paper and released-code values:
docs/methods/mlfo.md; `configs/mlfo.py` `released_code` sets the released code's variant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvssl import objectives
from jaxvssl.errors import ConfigError
from jaxvssl.inputs.views import ViewSpec
from jaxvssl.methods import base, registry
from jaxvssl.models.heads import MLPHead
from jaxvssl.models.motion_excitation import MotionExcitation
from jaxvssl.objectives import l2_normalize
from jaxvssl.objectives.graph import GRAPH_FORMS, GRAPH_TARGETS

# Levels, in the order of `level_weights`, and the backbone stage each one reads.
LEVELS = ('high', 'mid', 'low')
LEVEL_STAGES = {'high': 'stage4', 'mid': 'stage3', 'low': 'stage2'}
# Frames per timestep of each level's map: R3D (either stem) and S3D both halve T at stages 2-4
# (16 frames -> 8 / 4 / 2 timesteps).
LEVEL_FRAMES_PER_STEP = {'high': 8, 'mid': 4, 'low': 2}
# Backbones with the four stages the levels read.
BACKBONES = ('r3d10', 'r3d18', 'r3d34', 'r2plus1d10', 'r2plus1d18', 's3d')
AUG_OPS = ('shuffle', 'reverse')


def _device_major(x: jax.Array, n: int, groups: int) -> jax.Array:
  """Rows of per-view blocks reordered device by device: [V n, ...] -> [V n, ...].

  `x` stacks V blocks of n rows (block v = one view or clip kind of the whole batch, e.g.
  [a; b; long]). The loop shards the batch contiguously over the 'data' axis, so row i of every
  block belongs to device i // (n / groups). The result holds device 0's rows of every block,
  then device 1's, ...: its g-th contiguous 1/groups is exactly what `BatchNorm(num_groups=
  groups)` normalises together, so each device's share of all the blocks gets its own statistics
  (what a data-parallel PyTorch run sees on one GPU). Undone by `_view_major`.
  """
  v = x.shape[0] // n
  return jnp.swapaxes(x.reshape((v, groups, n // groups) + x.shape[1:]), 0, 1).reshape(x.shape)


def _view_major(x: jax.Array, n: int, groups: int) -> jax.Array:
  """The inverse of `_device_major`: [V n, ...] device by device -> view blocks of n rows."""
  v = x.shape[0] // n
  return jnp.swapaxes(x.reshape((groups, v, n // groups) + x.shape[1:]), 0, 1).reshape(x.shape)


def _pool_pairs(x: jax.Array) -> jax.Array:
  """Means of consecutive timestep pairs: [B, T, C] -> [B, T / 2, C]."""
  b, t, c = x.shape
  return x.reshape(b, t // 2, 2, c).mean(axis=2)


class MLFONetwork(nn.Module):
  """Backbone, per-level heads, prototypes and motion-excitation branches, in one module.

  One call runs the backbone once on [a; b; long] (BatchNorm statistics over all three clips;
  with `bn_groups` = #devices, over each device's share of the three, `_per_device`; the heads
  and motion excitation likewise) and returns float32 arrays:
    'z': {level: (z_a, z_b)} each [B, embed_dim];
    'scores': (s_a, s_b) [B, K], cos(semantic embedding, prototype k);
    'retrieval': {level: (short, long)} each [B, T_r, embed_dim] (see the module docstring);
    'aug': {level or 'input': (e_a, e_b, aug_a, aug_b)}: [B, D], [B, D], [B, A, D], [B, A, D].
  """

  backbone: nn.Module
  embed_dim: int
  num_prototypes: int
  head_levels: tuple[str, ...]
  retrieval_levels: tuple[str, ...]
  aug_levels: tuple[str, ...]
  aug_ops: tuple[str, ...]
  input_aug: bool
  semantic_head: bool
  me_reduction: int
  bn_groups: int = 1
  dtype: Any = jnp.float32

  def _per_device(self, fn: Callable[[jax.Array], Any], x: jax.Array, n: int, train: bool) -> Any:
    """`fn(x)` with BatchNorm groups = each device's share of every block of n rows of x.

    x [V n, ...] stacks V blocks of n rows (clips a, b, long, augmented clips, ...), and every
    BatchNorm inside `fn` splits its batch into `bn_groups` contiguous groups. Applied to x
    directly, a group would be a run of rows of one or two blocks (e.g. with 8 devices group 0
    of [a; b; long] = 3/8 of clip a: other devices' rows, no b or long). So x goes in device by
    device and every output leaf [V n, ...] comes back in block order. With one group (global
    statistics) or at evaluation (running statistics: every row on its own) the order does not
    matter and `fn(x)` runs unchanged.
    """
    g = self.bn_groups
    if g == 1 or not train:
      return fn(x)
    if n % g:
      raise ConfigError(
        f'config.batch_size: per-device BatchNorm (model.bn_mode=per_device) splits every clip '
        f'of the batch ({n}) over {g} devices; use a multiple of {g}'
      )
    out = fn(_device_major(x, n, g))
    return jax.tree_util.tree_map(lambda y: _view_major(y, n, g), out)

  def _head(self, width: int, name: str, use_bn: bool = True) -> MLPHead:
    return MLPHead(
      (width,), self.embed_dim, use_bn=use_bn, bn_groups=self.bn_groups, dtype=self.dtype, name=name
    )

  @nn.compact
  def __call__(
    self,
    a: jax.Array,
    b: jax.Array,
    long: jax.Array | None,
    aug_rng: jax.Array,
    train: bool,
  ) -> dict[str, Any]:
    n = a.shape[0]
    clips = [a, b] + ([long] if self.retrieval_levels else [])
    num_aug = len(self.aug_ops)
    if self.input_aug:
      # Conventional temporal modelling: shuffled / reversed INPUT clips, [A * 2B, T, H, W, 3].
      augs = objectives.temporal_augmentations(
        jnp.concatenate([a, b]), jax.random.fold_in(aug_rng, len(LEVELS)), self.aug_ops
      )
      clips.append(jnp.swapaxes(augs, 0, 1).reshape((-1,) + a.shape[1:]))
    _, stages = self._per_device(
      functools.partial(self.backbone, train=train, return_stages=True),
      jnp.concatenate(clips),
      n,
      train,
    )
    first_aug = n * (len(clips) - 1) if self.input_aug else None  # where the augmented clips start
    out: dict[str, Any] = {'z': {}, 'retrieval': {}, 'aug': {}}
    for level in self.head_levels:
      fmap = stages[LEVEL_STAGES[level]]
      seq = jnp.mean(fmap, axis=(2, 3))  # [nB, T, C]
      t = seq.shape[1]
      inputs = [seq[: 2 * n]]
      if level in self.retrieval_levels:
        if t % 2:
          raise ConfigError(
            f'config.mlfo.retrieval_levels: level {level!r} has {t} timesteps; retrieval pools '
            'each short clip to half of them, so it needs an even number (see '
            'config.data.num_frames)'
          )
        short = jnp.concatenate([_pool_pairs(seq[:n]), _pool_pairs(seq[n : 2 * n])], axis=1)
        inputs += [short, seq[2 * n : 3 * n]]
      if level == 'high' and self.input_aug:
        inputs.append(seq[first_aug:])
      head = self._head(seq.shape[-1], f'{level}_head')
      y = self._per_device(functools.partial(head, train=train), jnp.concatenate(inputs), n, train)
      y = y.astype(jnp.float32)  # [(2 | 4) B (+ 2AB), T, D]
      out['z'][level] = (jnp.mean(y[:n], axis=1), jnp.mean(y[n : 2 * n], axis=1))
      if level in self.retrieval_levels:
        out['retrieval'][level] = (y[2 * n : 3 * n], y[3 * n : 4 * n])
      if level == 'high' and self.input_aug:
        z_aug = jnp.mean(y[-2 * n * num_aug :], axis=1).reshape(num_aug, 2 * n, -1)
        z_aug = jnp.swapaxes(z_aug, 0, 1)  # [2B, A, D]
        out['aug']['input'] = out['z']['high'] + (z_aug[:n], z_aug[n:])

    if self.semantic_head:
      # The released code's semantic branch: its own head on the pooled high-level map.
      pooled = jnp.mean(stages[LEVEL_STAGES['high']][: 2 * n], axis=(1, 2, 3))  # [2B, C]
      head = self._head(pooled.shape[-1], 'semantic_head')
      sem = self._per_device(functools.partial(head, train=train), pooled, n, train)
      sem = sem.astype(jnp.float32)
    else:
      sem = jnp.concatenate(out['z']['high'])
    prototypes = self.param(
      'prototypes', nn.initializers.lecun_normal(), (self.embed_dim, self.num_prototypes)
    )
    # Normalised in the forward pass (SwAV re-normalises the stored columns after each step).
    scores = jnp.matmul(
      l2_normalize(sem),
      l2_normalize(prototypes, axis=0),
      precision=jax.lax.Precision.HIGHEST,
    )
    out['scores'] = (scores[:n], scores[n:])

    for i, level in enumerate(self.aug_levels):
      fmap = stages[LEVEL_STAGES[level]][: 2 * n]  # [2B, T, H, W, C] of a and b
      augs = objectives.temporal_augmentations(fmap, jax.random.fold_in(aug_rng, i), self.aug_ops)
      x = jnp.concatenate([fmap, jnp.swapaxes(augs, 0, 1).reshape((-1,) + fmap.shape[1:])])
      me = MotionExcitation(self.me_reduction, self.bn_groups, self.dtype, name=f'{level}_me')
      x = self._per_device(functools.partial(me, train=train), x, n, train)
      e = self._head(x.shape[-1], f'{level}_me_mlp', use_bn=False)(jnp.mean(x, axis=(1, 2, 3)))
      e = e.astype(jnp.float32)
      orig, aug = e[: 2 * n], jnp.swapaxes(e[2 * n :].reshape(num_aug, 2 * n, -1), 0, 1)
      out['aug'][level] = (orig[:n], orig[n:], aug[:n], aug[n:])
    return out


def combine_losses(
  out: dict[str, Any],
  queues: tuple[jax.Array, jax.Array] | None,
  use_queue: jax.Array | bool,
  graph_on: jax.Array | bool,
  c: ml_collections.ConfigDict,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The MLFO loss of one batch from the network's outputs (module docstring).

  Args:
    out: `MLFONetwork` outputs.
    queues: (queue_a, queue_b) [Q, K] stored raw scores of each view, or None (no queue).
    use_queue: whether the Sinkhorn problems include the queues (traced bool).
    graph_on: whether the graph losses count (the two-stage schedule; traced bool).
    c: the `config.mlfo` section.
  Returns:
    (scalar loss, float32 scalar metrics).
  """
  weights = dict(zip(LEVELS, c.level_weights))
  z1, z2 = out['z']['high']
  s1, s2 = out['scores']
  loss_ins = objectives.mlfo_instance_loss(z1, z2, c.temperature)
  sem = dict(temperature=c.prototype_temperature, epsilon=c.sinkhorn_epsilon)
  sem['num_iters'] = c.sinkhorn_iterations
  loss_sem, (t1, t2) = objectives.swapped_prediction_loss(s1, s2, **sem)
  if queues is not None:
    # Both are cheap ([B + Q, K] Sinkhorn problems); the step decides which one counts.
    loss_sem_q, (t1_q, t2_q) = objectives.swapped_prediction_loss(s1, s2, *queues, **sem)
    loss_sem = jnp.where(use_queue, loss_sem_q, loss_sem)
    t1, t2 = jnp.where(use_queue, t1_q, t1), jnp.where(use_queue, t2_q, t2)
  metrics = {'instance_loss': loss_ins, 'semantic_loss': loss_sem}
  loss = loss_ins + loss_sem

  if c.graph_levels:
    targets = objectives.graph_targets(z1, z2, t1, t2, c.temperature, c.eta, kind=c.graph_target)
    graph_total = jnp.zeros((), jnp.float32)
    for level in c.graph_levels:
      la, lb = out['z'][level]
      loss_r = objectives.graph_loss(targets, la, lb, c.temperature, form=c.graph_form)
      metrics[f'graph_loss/{level}'] = loss_r
      graph_total += weights[level] * loss_r
    metrics['graph_on'] = jnp.asarray(graph_on, jnp.float32)
    loss = loss + jnp.where(graph_on, graph_total, 0.0)

  for level in c.retrieval_levels:
    short, long = out['retrieval'][level]
    positions = jnp.broadcast_to(jnp.arange(long.shape[1]), long.shape[:2])
    loss_r = objectives.timestamp_retrieval_loss(short, long, positions, c.temperature)
    metrics[f'retrieval_loss/{level}'] = loss_r
    loss = loss + c.retrieval_weight * weights[level] * loss_r

  for level in tuple(c.aug_levels) + (('input',) if c.input_aug else ()):
    e1, e2, aug1, aug2 = out['aug'][level]
    loss_r = objectives.temporal_augmentation_loss(
      e1, e2, aug1, aug2, c.temperature, batch_negatives=c.aug_batch_negatives
    )
    metrics[f'aug_loss/{level}'] = loss_r
    loss = loss + c.aug_weight * loss_r

  zn1, zn2 = l2_normalize(z1), l2_normalize(z2)
  sims = zn1 @ zn2.T
  metrics['instance_accuracy'] = jnp.mean(jnp.argmax(sims, axis=-1) == jnp.arange(sims.shape[0]))
  metrics['positive_similarity'] = jnp.mean(jnp.diagonal(sims))
  # Prototypes the batch's Sinkhorn targets use: 1 means the clustering collapsed.
  used = jnp.zeros(s1.shape[-1], bool).at[jnp.argmax(t1 + t2, axis=-1)].set(True)
  metrics['prototypes_used'] = jnp.sum(used).astype(jnp.float32)
  return loss, metrics


@registry.register
class MLFO(base.Method):
  """Multi-level feature optimization with a Sinkhorn prototype queue (no momentum encoder)."""

  name = 'mlfo'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        embed_dim=128,  # every head's output
        temperature=0.07,  # tau of h(u, v) in L_ins, the graph, L_aug and L_ret
        num_prototypes=1000,  # K: 1000 Kinetics-400, 200 UCF101 (released code)
        prototype_temperature=0.1,  # p = softmax(z P / 0.1)
        sinkhorn_epsilon=0.05,
        sinkhorn_iterations=3,
        queue_size=1024,  # stored raw score rows per view; 0 = no queue; a multiple of batch_size
        queue_start_step=0,  # the queue joins the Sinkhorn problems from here (code: epoch 10)
        semantic_head=False,  # True: the released code's separate BatchNorm head for L_sem
        graph_levels=('mid', 'low'),  # the released code also has 'high'
        graph_target='combined',  # Table 2: 'combined' | 'instance' | 'semantic' | 'one_hot'
        graph_form='paper',  # 'paper' (eq. 10) | 'code' (cross-view, one direction, mean B^2)
        eta=0.05,  # edge threshold of E_ins
        graph_start_fraction=0.1,  # two-stage schedule: no graph loss for this part of training
        level_weights=(1.0, 0.5, 0.3),  # (high, mid, low)
        retrieval_levels=('high', 'mid', 'low'),
        retrieval_weight=1.0,
        aug_levels=('high', 'mid', 'low'),  # the released code: ('mid', 'low')
        aug_ops=('shuffle', 'reverse'),  # the released code: ('reverse',)
        aug_batch_negatives=False,  # the released code: True (other samples are negatives too)
        aug_weight=1.0,  # the released code: 0.5
        input_aug=False,  # Table 3 'CTM': aug_ops on the input clips (needs aug_levels=())
        me_reduction=16,  # motion excitation channel reduction (TEA)
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c, key = config[cls.name], f'config.{cls.name}'

    def fail(name, why):
      raise ConfigError(f'{key}.{name}={c[name]!r}: {why}')

    for name in ('embed_dim', 'me_reduction', 'sinkhorn_iterations'):
      if c[name] < 1:
        fail(name, 'must be >= 1')
    if c.num_prototypes < 2:
      fail('num_prototypes', 'must be >= 2')
    for name in ('temperature', 'prototype_temperature', 'sinkhorn_epsilon'):
      if c[name] <= 0:
        fail(name, 'must be positive')
    if c.queue_size < 0 or c.queue_size % config.batch_size:
      fail('queue_size', f'must be 0 or a multiple of config.batch_size={config.batch_size}')
    if c.queue_start_step < 0:
      fail('queue_start_step', 'must be >= 0')
    for name in ('graph_levels', 'retrieval_levels', 'aug_levels'):
      levels = tuple(c[name])
      if len(set(levels)) != len(levels) or not set(levels) <= set(LEVELS):
        fail(name, f'must be distinct names among {LEVELS}')
    if c.graph_target not in GRAPH_TARGETS:
      fail('graph_target', f'must be one of {GRAPH_TARGETS}')
    if c.graph_form not in GRAPH_FORMS:
      fail('graph_form', f'must be one of {GRAPH_FORMS}')
    if not 0.0 <= c.eta <= 1.0:
      fail('eta', 'must be in [0, 1]')
    if not 0.0 <= c.graph_start_fraction < 1.0:
      fail('graph_start_fraction', 'must be in [0, 1)')
    if len(c.level_weights) != 3 or any(w < 0 for w in c.level_weights):
      fail('level_weights', 'must be (high, mid, low), each >= 0')
    for name in ('retrieval_weight', 'aug_weight'):
      if c[name] < 0:
        fail(name, 'must be >= 0')
    ops = tuple(c.aug_ops)
    if not ops or len(set(ops)) != len(ops) or not set(ops) <= set(AUG_OPS):
      fail('aug_ops', f'must be distinct names among {AUG_OPS}')
    if c.input_aug and c.aug_levels:
      fail(
        'input_aug', 'input-level temporal modelling replaces the feature level: set aug_levels=()'
      )
    if config.model.backbone not in BACKBONES:
      raise ConfigError(
        f'config.model.backbone={config.model.backbone!r}: mlfo reads stages 2-4 of a 3D CNN, '
        f'one of {BACKBONES}'
      )
    frames = config.data.num_frames
    for level in c.retrieval_levels:
      if frames % (2 * LEVEL_FRAMES_PER_STEP[level]):
        fail(
          'retrieval_levels',
          f'level {level!r} needs config.data.num_frames (={frames}) to be a multiple of '
          f'{2 * LEVEL_FRAMES_PER_STEP[level]} (an even number of timesteps to pool in pairs)',
        )
    for level in c.aug_levels:
      if frames < 2 * LEVEL_FRAMES_PER_STEP[level]:
        fail(
          'aug_levels',
          f'level {level!r} has one timestep at config.data.num_frames={frames}; a temporal '
          f'augmentation needs >= {2 * LEVEL_FRAMES_PER_STEP[level]} frames',
        )

  @property
  def settings(self) -> ml_collections.ConfigDict:
    return self.config[self.name]

  def views(self) -> Sequence[ViewSpec]:
    f, s = self.config.data.num_frames, self.config.data.stride
    # One window of 2 f frames at stride s; augment_group None: an independent draw per clip.
    views = [
      ViewSpec('a', f, s, temporal_group='window'),
      ViewSpec('b', f, s, temporal_group='window', offset=f * s),
    ]
    if self.settings.retrieval_levels:
      views.append(ViewSpec('long', f, 2 * s, temporal_group='window'))
    return tuple(views)

  def network(self) -> MLFONetwork:
    c = self.settings
    head_levels = tuple(
      level
      for level in LEVELS
      if level == 'high' or level in c.graph_levels or level in c.retrieval_levels
    )
    bn_groups = self.num_devices if self.config.model.bn_mode == 'per_device' else 1
    return MLFONetwork(
      backbone=self.backbone(),
      embed_dim=c.embed_dim,
      num_prototypes=c.num_prototypes,
      head_levels=head_levels,
      retrieval_levels=tuple(c.retrieval_levels),
      aug_levels=tuple(c.aug_levels),
      aug_ops=tuple(c.aug_ops),
      input_aug=c.input_aug,
      semantic_head=c.semantic_head,
      me_reduction=c.me_reduction,
      bn_groups=bn_groups,
      dtype=jnp.dtype(self.config.model.dtype),
    )

  def _apply(self, variables, batch, rng, train, mutable=False):
    return self.network().apply(
      variables, batch['a'], batch['b'], batch.get('long'), rng, train=train, mutable=mutable
    )

  def init(self, rng, batch):
    c = self.settings
    net = self.network()
    variables = net.init(rng, batch['a'], batch['b'], batch.get('long'), rng, train=False)
    state: dict[str, Any] = dict(batch_stats=variables.get('batch_stats', {}))
    if c.queue_size:
      empty = base.Queue(
        keys=jnp.zeros((c.queue_size, c.num_prototypes), jnp.float32),
        pointer=jnp.zeros((), jnp.int32),
      )
      state['queues'] = {'a': empty, 'b': empty}
    return variables['params'], state

  def queue_start(self) -> int:
    """First step whose Sinkhorn uses the queue: `queue_start_step`, once the queue is full."""
    c = self.settings
    return max(c.queue_start_step, c.queue_size // self.config.batch_size)

  def graph_start(self) -> int:
    """First step of the second stage (graph losses on)."""
    return int(self.settings.graph_start_fraction * self.config.num_steps)

  def loss_fn(self, params, state, batch, rng, step):
    c = self.settings
    out, updates = self._apply(
      {'params': params, 'batch_stats': state['batch_stats']},
      batch,
      rng,
      train=True,
      mutable=['batch_stats'],
    )
    step = jnp.asarray(step)
    queues = state.get('queues')
    use_queue = step >= self.queue_start()
    loss, metrics = combine_losses(
      out,
      None if queues is None else (queues['a'].keys, queues['b'].keys),
      use_queue,
      step >= self.graph_start(),
      c,
    )
    new_state = dict(state, batch_stats=updates.get('batch_stats', {}))
    if queues is not None:
      # Raw scores, as the released code stores them (sinkhorn_knopp_with_queue's docstring).
      s1, s2 = jax.lax.stop_gradient(out['scores'])
      new_state['queues'] = {'a': queues['a'].push(s1), 'b': queues['b'].push(s2)}
      metrics['queue_in_use'] = use_queue.astype(jnp.float32)
    return loss, (metrics, new_state)

  def backbone_variables(self, params, state):
    return base.submodule_variables(params, state['batch_stats'], 'backbone')

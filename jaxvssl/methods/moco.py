"""`moco`: the video MoCo baseline (the "V-MoCo" row of CACL's Table 1, CVRL-style views).

Query encoder f_q = head(backbone(x)), key encoder f_k = momentum copy of f_q, a queue of past
keys as negatives, InfoNCE with temperature tau:

  loss_i = -log( exp(q_i.k_i / tau) / (exp(q_i.k_i / tau) + sum_j exp(q_i.n_j / tau)) )

Views: two clips of the same video (`same_clip=False`, CVRL) or two augmentations of one clip
(`same_clip=True`, MoCo on video as in CACL's V-MoCo). It is the template the other methods follow.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvssl import objectives
from jaxvssl.errors import ConfigError
from jaxvssl.inputs.views import ViewSpec
from jaxvssl.methods import base, registry
from jaxvssl.objectives import l2_normalize
from jaxvssl.models.heads import MLPHead


class EncoderWithHead(nn.Module):
  """backbone -> projection head; returns (embedding [B, dim], pooled feature [B, D])."""

  backbone: nn.Module
  head: nn.Module

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    feature = self.backbone(x, train=train)
    return self.head(feature, train=train), feature


def make_head(hidden_dim: int, embed_dim: int) -> nn.Module:
  """Linear head (hidden_dim=0, MoCo v1) or one hidden layer with ReLU (MoCo v2 / CVRL)."""
  return MLPHead(hidden_dims=(hidden_dim,) if hidden_dim else (), out_dim=embed_dim)


@registry.register
class MoCo(base.Method):
  """Video MoCo with a queue of negatives and an optional shuffle-BN key encoder."""

  name = 'moco'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        embed_dim=128,
        head_hidden_dim=2048,  # 0 = linear head
        queue_size=65536,  # must be a multiple of the global batch size
        temperature=0.1,
        momentum=0.999,
        shuffle_bn=True,  # effective with model.bn_mode='per_device'
        same_clip=False,  # True: key = same clip, other augmentation
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c, key = config[cls.name], f'config.{cls.name}'
    if c.queue_size <= 0 or c.queue_size % config.batch_size:
      raise ConfigError(
        f'{key}.queue_size={c.queue_size} must be a positive multiple of '
        f'config.batch_size={config.batch_size}'
      )
    if c.temperature <= 0:
      raise ConfigError(f'{key}.temperature={c.temperature} must be positive')
    if not 0.0 <= c.momentum < 1.0:
      raise ConfigError(f'{key}.momentum={c.momentum} must be in [0, 1)')
    if c.embed_dim <= 0 or c.head_hidden_dim < 0:
      raise ConfigError(
        f'{key}.embed_dim={c.embed_dim} must be positive and '
        f'head_hidden_dim={c.head_hidden_dim} >= 0'
      )

  @property
  def settings(self) -> ml_collections.ConfigDict:
    """This method's section of the config (`config.moco`; subclasses have their own)."""
    return self.config[self.name]

  def views(self) -> Sequence[ViewSpec]:
    d = self.config.data
    key_group = 0 if self.settings.same_clip else 1
    return (
      ViewSpec(
        name='query', num_frames=d.num_frames, stride=d.stride, temporal_group=0, augment_group=0
      ),
      ViewSpec(
        name='key',
        num_frames=d.num_frames,
        stride=d.stride,
        temporal_group=key_group,
        augment_group=1,
      ),
    )

  def encoder(self) -> EncoderWithHead:
    c = self.settings
    return EncoderWithHead(backbone=self.backbone(), head=make_head(c.head_hidden_dim, c.embed_dim))

  def init(self, rng, batch):
    c = self.settings
    init_rng, queue_rng = jax.random.split(rng)
    variables = self.encoder().init(init_rng, batch['query'], train=False)
    params = variables['params']
    state = dict(
      batch_stats=variables.get('batch_stats', {}),
      key_params=params,
      key_batch_stats=variables.get('batch_stats', {}),
      queue=base.Queue.create(queue_rng, c.queue_size, c.embed_dim),
    )
    return params, state

  def loss_fn(self, params, state, batch, rng, step):
    del step
    c = self.settings
    encoder = self.encoder()
    (q, _), updates = encoder.apply(
      {'params': params, 'batch_stats': state['batch_stats']},
      batch['query'],
      train=True,
      mutable=['batch_stats'],
    )

    def key_fn(x):
      (k, _), key_updates = encoder.apply(
        {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
        x,
        train=True,
        mutable=['batch_stats'],
      )
      return k, key_updates

    shuffle_rng = rng if c.shuffle_bn and self.config.model.bn_mode == 'per_device' else None
    k, key_updates = base.shuffled_apply(key_fn, batch['key'], shuffle_rng)
    k = jax.lax.stop_gradient(l2_normalize(k))
    queue = state['queue']
    losses = objectives.info_nce(q, k, queue.keys, c.temperature)

    qn = l2_normalize(q)
    pos = jnp.sum(qn * k, axis=-1)
    neg = qn @ queue.keys.T
    metrics = dict(
      contrastive_loss=jnp.mean(losses),
      # The positive beats every queued negative: the instance-discrimination accuracy.
      contrastive_accuracy=jnp.mean(pos > jnp.max(neg, axis=-1)),
      positive_similarity=jnp.mean(pos),
      negative_similarity=jnp.mean(neg),
    )
    if 'label' in batch:  # class structure vs contraction of the embedding (docs/methods/moco.md)
      same, other = objectives.class_similarity(q, k, batch['label'])
      metrics.update({'class_similarity/same': same, 'class_similarity/other': other})
    new_state = dict(
      state,
      batch_stats=updates.get('batch_stats', {}),
      key_batch_stats=key_updates.get('batch_stats', {}),
      queue=queue.push(k),
    )
    return jnp.mean(losses), (metrics, new_state)

  def after_update(self, params, state, step):
    del step
    return dict(state, key_params=base.ema(state['key_params'], params, self.settings.momentum))

  def backbone_variables(self, params, state):
    return base.submodule_variables(params, state['batch_stats'], 'backbone')

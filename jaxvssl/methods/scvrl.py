"""`scvrl`: shuffled contrastive video representation learning.

Paper: "SCVRL: Shuffled Contrastive Video Representation Learning" (Dorkenwald et al., CVPRW
2022). Query encoder f_q = backbone + two heads, momentum encoder f_k (EMA of f_q), and

  L = w_T * L_T + w_V * L_V                        (loss_weights = (w_T, w_V) = (1, 1))

  L_T (shuffled contrastive): anchor = clip x with augmentation a (f_q, shuffle head); positive =
      the SAME clip with augmentation p (f_k); negatives = N_T = 12 permutations of the POSITIVE
      that move whole groups of 2 frames (never single frames, never the identity), drawn per
      sample on device (`objectives.group_shuffle_permutations`) and encoded by f_k. InfoNCE with
      per-query negatives.
  L_V (visual contrastive, CVRL): the same anchor (visual head); positive = another clip of the
      same video (f_k); negatives = a memory bank of keys of other videos (`base.Queue`).

Both InfoNCE temperatures are `temperature` (0.1). Ablation options (the paper's Table 8):
`shared_head` (one head for both losses), `shuffle_objective='binary'` (a 2-way "is this clip
shuffled" classifier on the anchor and a group-shuffled copy of it instead of L_T), `pool`
('cls' | 'mean' token of MViT), the patch temporal kernel (`model.kwargs.patch_kernel`) and the
targeted-sampling temperature (`data.targeted_beta`); `loss_weights=(0, 1)` is the CVRL baseline
and `(1, 0)` L_T alone. A loss whose weight is 0 is not computed (nor its views read).
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
from jaxvssl.methods.moco import make_head
from jaxvssl.models.mvit import POOLS
from jaxvssl.objectives import l2_normalize

SHUFFLE_OBJECTIVES = ('contrastive', 'binary')


class SCVRLEncoder(nn.Module):
  """backbone -> (shuffle head, visual head); `visual_head=None` shares the shuffle head.

  Returns (shuffle output [B, embed_dim or 2], visual embedding [B, embed_dim], feature [B, D]).
  """

  backbone: nn.Module
  shuffle_head: nn.Module
  visual_head: nn.Module | None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    feature = self.backbone(x, train=train)
    z_t = self.shuffle_head(feature, train=train)
    z_v = z_t if self.visual_head is None else self.visual_head(feature, train=train)
    return z_t, z_v, feature


@registry.register
class SCVRL(base.Method):
  """Shuffled contrastive (L_T) + visual contrastive (L_V) learning with a momentum encoder."""

  name = 'scvrl'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        embed_dim=128,
        head_hidden_dim=2048,  # both heads: CLS -> 2048 -> ReLU -> 128
        queue_size=65536,  # L_V memory bank; a positive multiple of the global batch size
        temperature=0.1,  # both InfoNCE losses
        momentum=0.999,  # key encoder EMA
        num_negatives=12,  # N_T shuffled copies of the positive per sample
        group_size=2,  # frames moved together (= the patch embedding's temporal stride)
        loss_weights=(1.0, 1.0),  # (w_T, w_V): (0, 1) = CVRL, (1, 0) = L_T alone
        shared_head=False,  # Table 8b: one head for both losses
        shuffle_objective='contrastive',  # Table 8c: 'contrastive' (L_T) | 'binary'
        pool='cls',  # Table 8d: MViT clip feature, 'cls' | 'mean'
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c, key = config[cls.name], f'config.{cls.name}'

    def fail(name, why):
      raise ConfigError(f'{key}.{name}={c[name]!r}: {why}')

    if len(c.loss_weights) != 2 or any(w < 0 for w in c.loss_weights) or max(c.loss_weights) <= 0:
      fail('loss_weights', 'must be (w_T, w_V), both >= 0 and at least one > 0')
    if c.queue_size <= 0 or c.queue_size % config.batch_size:
      fail('queue_size', f'must be a positive multiple of config.batch_size={config.batch_size}')
    if c.temperature <= 0:
      fail('temperature', 'must be positive')
    if not 0.0 <= c.momentum < 1.0:
      fail('momentum', 'must be in [0, 1)')
    if c.embed_dim <= 0:
      fail('embed_dim', 'must be positive')
    if c.head_hidden_dim < 0:
      fail('head_hidden_dim', 'must be >= 0 (0 = linear head)')
    if c.num_negatives < 1:
      fail('num_negatives', 'must be >= 1')
    frames = config.data.num_frames
    if c.group_size < 1 or frames % c.group_size or frames // c.group_size < 2:
      fail(
        'group_size',
        f'must divide config.data.num_frames={frames} into at least 2 groups of frames',
      )
    if c.shuffle_objective not in SHUFFLE_OBJECTIVES:
      fail('shuffle_objective', f'must be one of {SHUFFLE_OBJECTIVES}')
    if c.shared_head and c.shuffle_objective == 'binary':
      fail('shared_head', "a shared head needs shuffle_objective='contrastive' (embeddings)")
    if c.pool not in POOLS:
      fail('pool', f'must be one of {POOLS}')
    if c.pool != 'cls' and not config.model.backbone.startswith('mvit'):
      fail('pool', f"'mean' needs an MViT backbone, not {config.model.backbone!r}")
    m = config.model
    if m.input_mode == 'residual':
      raise ConfigError(
        "config.model.input_mode='residual': frame differences across the seams of the shuffled "
        "groups would reveal the shuffle; use 'rgb' or 'group_residual' (differences inside a group)"
      )
    if m.input_mode == 'group_residual' and c.group_size % m.input_group_size:
      raise ConfigError(
        f'config.model.input_group_size={m.input_group_size}: must divide '
        f'config.scvrl.group_size={c.group_size}, or the input groups straddle the seams of the '
        'shuffled groups'
      )

  @property
  def settings(self) -> ml_collections.ConfigDict:
    return self.config[self.name]

  @property
  def weights(self) -> tuple[float, float]:
    w_t, w_v = self.settings.loss_weights
    return float(w_t), float(w_v)

  def views(self) -> Sequence[ViewSpec]:
    d, c = self.config.data, self.settings
    w_t, w_v = self.weights

    def view(name, temporal_group, augment_group):
      return ViewSpec(
        name=name,
        num_frames=d.num_frames,
        stride=d.stride,
        temporal_group=temporal_group,
        augment_group=augment_group,
        # Windows drawn with p = softmax(motion score / data.targeted_beta); beta = inf: uniform.
        sampler='targeted',
      )

    views = [view('anchor', 0, 0)]
    if w_t > 0 and c.shuffle_objective == 'contrastive':
      views.append(view('positive', 0, 1))  # the same clip, augmentation p
    if w_v > 0:
      views.append(view('visual', 1, 2))  # another clip of the same video
    return tuple(views)

  def backbone(self) -> nn.Module:
    if self.settings.pool == 'cls':
      return super().backbone()
    return base.build_backbone(self.config, self.num_devices, pool=self.settings.pool)

  def encoder(self) -> SCVRLEncoder:
    c = self.settings
    out = 2 if c.shuffle_objective == 'binary' else c.embed_dim
    return SCVRLEncoder(
      backbone=self.backbone(),
      shuffle_head=make_head(c.head_hidden_dim, out),
      visual_head=None if c.shared_head else make_head(c.head_hidden_dim, c.embed_dim),
    )

  def init(self, rng, batch):
    c = self.settings
    init_rng, dropout_rng, queue_rng = jax.random.split(rng, 3)
    variables = self.encoder().init(
      {'params': init_rng, 'dropout': dropout_rng}, batch['anchor'], train=False
    )
    params = variables['params']
    batch_stats = variables.get('batch_stats', {})
    state = dict(
      batch_stats=batch_stats,
      key_params=params,
      key_batch_stats=batch_stats,
      queue=base.Queue.create(queue_rng, c.queue_size, c.embed_dim),
    )
    return params, state

  def loss_fn(self, params, state, batch, rng, step):
    del step
    c = self.settings
    w_t, w_v = self.weights
    encoder = self.encoder()
    q_rng, k_rng, perm_rng = jax.random.split(rng, 3)
    anchor = batch['anchor']
    b, frames = anchor.shape[:2]
    binary = w_t > 0 and c.shuffle_objective == 'binary'
    perms = objectives.group_shuffle_permutations(
      perm_rng, b, 1 if binary else c.num_negatives, frames, c.group_size
    )

    # Query encoder: the anchor (and, for the binary objective, a group-shuffled copy of it).
    query_in = anchor
    if binary:
      query_in = jnp.concatenate([anchor, objectives.permute_frames(anchor, perms)[:, 0]])
    (q_t, q_v, _), updates = encoder.apply(
      {'params': params, 'batch_stats': state['batch_stats']},
      query_in,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': q_rng},
    )

    # Momentum encoder: positives, their shuffled copies and the other clips, in one pass.
    key_in = []
    if w_t > 0 and not binary:
      positive = batch['positive']
      negatives = objectives.permute_frames(positive, perms)  # [B, N_T, T, H, W, C]
      key_in += [positive, negatives.reshape((-1,) + positive.shape[1:])]
    if w_v > 0:
      key_in.append(batch['visual'])
    key_batch_stats = state['key_batch_stats']
    if key_in:
      (k_t, k_v, _), key_updates = encoder.apply(
        {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
        jnp.concatenate(key_in),
        train=True,
        mutable=['batch_stats'],
        rngs={'dropout': k_rng},
      )
      k_t, k_v = jax.lax.stop_gradient((k_t, k_v))
      key_batch_stats = key_updates.get('batch_stats', {})

    metrics, loss, queue = {}, jnp.zeros((), jnp.float32), state['queue']
    if binary:
      labels = jnp.concatenate([jnp.zeros((b,), jnp.int32), jnp.ones((b,), jnp.int32)])
      loss_t = objectives.softmax_cross_entropy(q_t, labels)
      metrics['shuffle_loss'] = jnp.mean(loss_t)
      metrics['shuffle_accuracy'] = jnp.mean(jnp.argmax(q_t, axis=-1) == labels)
      loss = loss + w_t * jnp.mean(loss_t)
      q_v = q_v[:b]
    elif w_t > 0:
      pos_t = k_t[:b]
      neg_t = k_t[b : b * (1 + c.num_negatives)].reshape(b, c.num_negatives, -1)
      loss_t = objectives.info_nce(q_t, pos_t, neg_t, c.temperature)
      qn, pn, nn_ = l2_normalize(q_t), l2_normalize(pos_t), l2_normalize(neg_t)
      pos = jnp.sum(qn * pn, axis=-1)
      neg = jnp.einsum('bd,bnd->bn', qn, nn_)
      metrics['shuffle_loss'] = jnp.mean(loss_t)
      # The unshuffled positive beats every shuffled copy of itself.
      metrics['shuffle_accuracy'] = jnp.mean(pos > jnp.max(neg, axis=-1))
      metrics['shuffle_positive_similarity'] = jnp.mean(pos)
      metrics['shuffle_negative_similarity'] = jnp.mean(neg)
      loss = loss + w_t * jnp.mean(loss_t)
    if w_v > 0:
      k_vis = l2_normalize(k_v[-b:])
      loss_v = objectives.info_nce(q_v, k_vis, queue.keys, c.temperature)
      qn = l2_normalize(q_v)
      pos = jnp.sum(qn * k_vis, axis=-1)
      neg = qn @ queue.keys.T
      metrics['visual_loss'] = jnp.mean(loss_v)
      metrics['visual_accuracy'] = jnp.mean(pos > jnp.max(neg, axis=-1))
      metrics['visual_positive_similarity'] = jnp.mean(pos)
      metrics['visual_negative_similarity'] = jnp.mean(neg)
      if 'label' in batch:
        same, other = objectives.class_similarity(q_v, k_vis, batch['label'])
        metrics.update({'class_similarity/same': same, 'class_similarity/other': other})
      loss = loss + w_v * jnp.mean(loss_v)
      queue = queue.push(k_vis)
    new_state = dict(
      state,
      batch_stats=updates.get('batch_stats', {}),
      key_batch_stats=key_batch_stats,
      queue=queue,
    )
    return loss, (metrics, new_state)

  def after_update(self, params, state, step):
    del step
    return dict(state, key_params=base.ema(state['key_params'], params, self.settings.momentum))

  def backbone_variables(self, params, state):
    return base.submodule_variables(params, state['batch_stats'], 'backbone')

"""`rate_order`: segment order + sampling-rate prediction + contrast with shuffle similarity and
view synthesis (IEEE TCSVT 2021, DOI 10.1109/TCSVT.2021.3114209; docs/methods/rate_order.md).

No code was released for the paper; every choice it leaves open is written down in the docs page.

Input per video (`jaxvssl/inputs/segments.py`, drawn by the pipeline as extras): the query clip
of `data.num_frames` frames made of n = `num_segments` segments, each of a random length
(>= `min_segment_length`) and its own sampling rate in [`rate_min`, `rate_max`], consecutive on
the timeline, then put in a random order; labels = the order's class among the n! permutations
and the rates in INPUT order. The key candidate is another such clip of the same video (its own
lengths, rates, order and spatial augmentation).

Networks (params): the backbone (`config.model`) -> 512-d feature r, and three heads on r:
  order head    MLP r -> `order_hidden_dim` -> ReLU -> n! logits       (eq. 1-4, cross entropy)
  rate head     linear r -> n rates (MSE, eq. 5-7); `rate_objective='classification'`:
                linear r -> n x R logits, R = rate_max - rate_min + 1 (Table V)
  contrast head MLP r -> `head_hidden_dim` -> ReLU -> `embed_dim`      ("512 -> 128, non-linear")
Momentum copy (state) of backbone + contrast head: the key encoder (eq. 18), a queue of keys.

Key: the synthetic view G(query) of the frozen view-synthesis generator
(`methods/view_synthesis.py`, loaded from its stage run) for a random `synthetic_key_prob` of the
batch, else the other clip (Fig. 2a: "randomly select a sample from the candidates as the key").
`synthetic_key_draw='subset'` (configs/rate_order.py) takes exactly round(p B) samples at random
positions and runs G on those only; 'bernoulli' draws each sample independently and runs G on the
whole batch. Either way
each sample's key is synthetic with probability p; 'subset' halves G's cost at p = 0.5, which
matters because G is the step's largest network at the tiny scale (9.1 of 13.1 GFLOPs a step).

Contrast (eq. 8): InfoNCE of the query against its key and the queue, logits sim / tau:
  similarity='cosine'   sim = cos(q, k)
  similarity='shuffle'  Algorithm 1 on the L2-normalised embeddings, k = `shuffle_parts` parts
                        (0: n): the greedy minimum matching of part distances; sim = -dis
                        (`shuffle_logit='distance'`, Algorithm 1's sum of Euclidean part
                        distances) or sim = -dis2 / 2 with squared part distances
                        (`'squared'`: the cosine of the part-aligned vectors minus 1, so that
                        'cosine' is its special case of no re-alignment).

  L = order_weight * L_order + rate_weight * L_rate + contrastive_weight * L_contrast
    = 1.0 L_order + 0.3 L_sr + 1.0 L_ctr (eq. 17, Sec. IV-D)

A weight of 0 removes its part: no key view, queue, momentum encoder or generator without the
contrast; no generator with synthetic_key_prob = 0 (Table VI's rows are configs of this method).
Logged pretext diagnostics (Tables III/IV): order_accuracy, rate_error (mean absolute error of
the rates), contrastive_loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvssl import objectives
from jaxvssl.errors import ConfigError
from jaxvssl.inputs import segments as segments_lib
from jaxvssl.inputs import views as views_lib
from jaxvssl.inputs.views import ViewSpec
from jaxvssl.methods import base, registry
from jaxvssl.methods import view_synthesis as view_synthesis_lib
from jaxvssl.models.heads import MLPHead
from jaxvssl.objectives import l2_normalize

RATE_OBJECTIVES = ('regression', 'classification')
SIMILARITIES = ('cosine', 'shuffle')
SHUFFLE_LOGITS = ('distance', 'squared')
QUERY_PREFIX = 'segments'  # batch keys 'segments_indices', '_order_class', '_rates', ...
KEY_PREFIX = 'key_segments'  # the key clip's own layout
MAX_SEGMENTS = 5  # the paper's range is n in [2, 5]: 5! = 120 order classes


class RateOrderNet(nn.Module):
  """backbone -> (order logits, rate output, contrast embedding); absent heads give None."""

  backbone: nn.Module
  order_head: nn.Module | None
  rate_head: nn.Module | None
  contrast_head: nn.Module | None
  num_segments: int
  num_rate_classes: int = 0  # > 0: the rate head is a classifier (Table V)

  def __call__(self, x: jax.Array, train: bool = False):
    feature = self.backbone(x, train=train)
    order = self.order_head(feature, train=train) if self.order_head is not None else None
    rate = None
    if self.rate_head is not None:
      rate = self.rate_head(feature, train=train)
      if self.num_rate_classes:
        rate = rate.reshape(rate.shape[:-1] + (self.num_segments, self.num_rate_classes))
    z = self.contrast_head(feature, train=train) if self.contrast_head is not None else None
    return order, rate, z

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """The key encoder's path: backbone -> contrast head."""
    return self.contrast_head(self.backbone(x, train=train), train=train)


@registry.register
class RateOrder(base.Method):
  """Segment order + sampling-rate prediction + MoCo with shuffle similarity (module doc)."""

  name = 'rate_order'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        # Clip construction (jaxvssl/inputs/segments.py); clip length = data.num_frames.
        num_segments=3,  # n in [2, 5]; n! order classes
        min_segment_length=3,  # frames; >= 2
        rate_min=1,  # sampling rates (frame intervals) in [rate_min, rate_max]
        rate_max=8,
        rate_draw='sequential',  # 'sequential' | 'first_fit' (segments.py)
        # Every segment length a multiple of this (segments.py); with
        # model.input_mode='group_residual' it must be a multiple of model.input_group_size.
        segment_length_multiple=1,
        # Loss weights (eq. 17 and Sec. IV-D: 1.0, 0.3, 1.0); 0 removes the part.
        order_weight=1.0,
        rate_weight=0.3,
        contrastive_weight=1.0,
        # Heads.
        order_hidden_dim=512,  # "MLP" (eq. 2); 0 = linear
        rate_objective='regression',  # 'regression' (MSE) | 'classification' (Table V)
        head_hidden_dim=512,  # contrast head 512 -> 512 -> ReLU -> embed_dim
        embed_dim=120,  # divisible by every k in 2..5 (the shuffle similarity splits it)
        # Contrast (MoCo).
        similarity='shuffle',  # 'shuffle' (Algorithm 1) | 'cosine'
        shuffle_parts=0,  # k of Algorithm 1; 0 = num_segments
        shuffle_logit='distance',  # 'distance': -dis / tau | 'squared': -dis2 / (2 tau)
        queue_size=8192,  # a multiple of batch_size; the paper gives none
        temperature=0.07,
        momentum=0.999,
        shuffle_bn=True,  # effective with model.bn_mode='per_device'
        # View synthesis: the key is G(query) with this probability, else the other clip.
        synthetic_key_prob=0.5,  # 0: no view synthesis
        # 'subset': exactly round(p B) keys, G on those only (configs/rate_order.py) |
        # 'bernoulli': per sample, G on all (the default: runs older than this key did that).
        synthetic_key_draw='bernoulli',
        synthetic_sample=True,  # G samples its latent (the VAE's Gaussian noise) per key
        view_synthesis_workdir='',  # the view_synthesis stage's run directory
        view_synthesis_step=-1,  # -1: its latest checkpoint
        # G's architecture: must equal the stage's view_synthesis.* values (checked at load).
        generator_channels=(32, 64),
        latent_dim=16,
        temporal_kernel=3,
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c, key = config.rate_order, 'config.rate_order'

    def fail(name, why):
      raise ConfigError(f'{key}.{name}={c[name]!r}: {why}')

    if not 2 <= c.num_segments <= MAX_SEGMENTS:
      fail('num_segments', f'must be in [2, {MAX_SEGMENTS}] (the paper limits n to 2..5)')
    if c.min_segment_length < 2:
      fail('min_segment_length', 'must be >= 2 (a one-frame segment shows no sampling rate)')
    frames = config.data.num_frames
    if c.num_segments * c.min_segment_length > frames:
      fail(
        'min_segment_length',
        f'{c.num_segments} segments of >= {c.min_segment_length} frames do not fit '
        f'data.num_frames={frames} (the tiny scale: 8-frame clips, segments of >= 2 frames)',
      )
    if not 1 <= c.rate_min <= c.rate_max:
      fail('rate_min', f'and rate_max={c.rate_max} must satisfy 1 <= rate_min <= rate_max')
    if c.rate_draw not in segments_lib.RATE_DRAWS:
      fail('rate_draw', f'must be one of {segments_lib.RATE_DRAWS}')
    g = c.segment_length_multiple
    if g < 1 or frames % g or c.min_segment_length % g:
      fail(
        'segment_length_multiple',
        f'must be >= 1 and divide data.num_frames={frames} and '
        f'min_segment_length={c.min_segment_length}',
      )
    m = config.model
    if m.input_mode == 'residual':
      raise ConfigError(
        "config.model.input_mode='residual': frame differences across the seams of the shuffled "
        "segments would show where the order breaks; use 'rgb' or 'group_residual' with "
        'config.rate_order.segment_length_multiple a multiple of model.input_group_size'
      )
    if m.input_mode == 'group_residual' and g % m.input_group_size:
      raise ConfigError(
        f'config.model.input_group_size={m.input_group_size}: must divide '
        f'config.rate_order.segment_length_multiple={g}, or the input groups straddle the seams '
        'of the shuffled segments'
      )
    for name in ('order_weight', 'rate_weight', 'contrastive_weight'):
      if c[name] < 0:
        fail(name, 'must be >= 0')
    if c.order_weight == c.rate_weight == c.contrastive_weight == 0:
      fail('order_weight', 'rate_weight and contrastive_weight are all 0: nothing to learn')
    if c.rate_objective not in RATE_OBJECTIVES:
      fail('rate_objective', f'must be one of {RATE_OBJECTIVES}')
    if c.order_hidden_dim < 0 or c.head_hidden_dim < 0:
      fail('order_hidden_dim', f'and head_hidden_dim={c.head_hidden_dim} must be >= 0')
    if c.similarity not in SIMILARITIES:
      fail('similarity', f'must be one of {SIMILARITIES}')
    if c.shuffle_logit not in SHUFFLE_LOGITS:
      fail('shuffle_logit', f'must be one of {SHUFFLE_LOGITS}')
    if c.shuffle_parts < 0:
      fail('shuffle_parts', 'must be >= 0 (0: num_segments)')
    if c.embed_dim <= 0:
      fail('embed_dim', 'must be positive')
    parts = c.shuffle_parts or c.num_segments
    if c.similarity == 'shuffle' and c.embed_dim % parts:
      fail(
        'embed_dim',
        f'must be divisible by the {parts} parts of the shuffle similarity (shuffle_parts, or '
        'num_segments; 120 and 60 divide by every n in 2..5)',
      )
    if c.temperature <= 0:
      fail('temperature', 'must be positive')
    if not 0.0 <= c.momentum < 1.0:
      fail('momentum', 'must be in [0, 1)')
    if not 0.0 <= c.synthetic_key_prob <= 1.0:
      fail('synthetic_key_prob', 'must be in [0, 1]')
    if c.synthetic_key_draw not in ('subset', 'bernoulli'):
      fail('synthetic_key_draw', "must be 'subset' or 'bernoulli'")
    if c.contrastive_weight > 0:
      if c.queue_size <= 0 or c.queue_size % config.batch_size:
        fail('queue_size', f'must be a positive multiple of batch_size={config.batch_size}')
      if c.synthetic_key_prob > 0:
        if not c.view_synthesis_workdir:
          fail(
            'view_synthesis_workdir',
            'must name the view_synthesis run directory (synthetic_key_prob > 0); '
            'synthetic_key_prob=0 trains without view synthesis',
          )
        if not c.generator_channels or any(int(w) <= 0 for w in c.generator_channels):
          fail('generator_channels', 'must be a non-empty tuple of positive widths')
        factor = 2 ** len(c.generator_channels)
        if config.data.crop_size % factor:
          fail(
            'generator_channels',
            f'needs data.crop_size={config.data.crop_size} divisible by {factor}',
          )

  @property
  def settings(self) -> ml_collections.ConfigDict:
    return self.config.rate_order

  @property
  def contrastive(self) -> bool:
    return self.settings.contrastive_weight > 0

  @property
  def synthesis(self) -> bool:
    return self.contrastive and self.settings.synthetic_key_prob > 0

  @property
  def num_order_classes(self) -> int:
    return math.factorial(self.settings.num_segments)

  @property
  def num_rate_classes(self) -> int:
    return self.settings.rate_max - self.settings.rate_min + 1

  @property
  def shuffle_parts(self) -> int:
    return self.settings.shuffle_parts or self.settings.num_segments

  # --- data ------------------------------------------------------------------------------------
  def _segment_extra(self, name: str) -> views_lib.Extra:
    c = self.settings
    return views_lib.segment_clip_extra(
      name=name,
      clip_length=self.config.data.num_frames,
      num_segments=c.num_segments,
      rate_range=(c.rate_min, c.rate_max),
      min_segment_length=c.min_segment_length,
      rate_draw=c.rate_draw,
      length_multiple=c.segment_length_multiple,
    )

  def views(self) -> Sequence[ViewSpec]:
    frames = self.config.data.num_frames
    views = [
      ViewSpec(
        'query',
        frames,
        sampler='extra',
        indices_key=f'{QUERY_PREFIX}_indices',
        augment_group=0,
      )
    ]
    if self.contrastive:
      views.append(
        ViewSpec(
          'key', frames, sampler='extra', indices_key=f'{KEY_PREFIX}_indices', augment_group=1
        )
      )
    return tuple(views)

  def extras(self):
    extras = [self._segment_extra(QUERY_PREFIX)]
    if self.contrastive:
      extras.append(self._segment_extra(KEY_PREFIX))
    return tuple(extras)

  def example_batch(self, batch_size: int) -> dict[str, jax.Array]:
    batch = super().example_batch(batch_size)
    n = self.settings.num_segments
    batch[f'{QUERY_PREFIX}_order_class'] = jnp.zeros((batch_size,), jnp.int32)
    batch[f'{QUERY_PREFIX}_rates'] = jnp.full((batch_size, n), self.settings.rate_min, jnp.int32)
    return batch

  # --- networks --------------------------------------------------------------------------------
  def network(self) -> RateOrderNet:
    c = self.settings
    dtype = jnp.dtype(self.config.model.dtype)
    order_head = rate_head = contrast_head = None
    if c.order_weight > 0:
      hidden = (c.order_hidden_dim,) if c.order_hidden_dim else ()
      order_head = MLPHead(hidden_dims=hidden, out_dim=self.num_order_classes, dtype=dtype)
    classes = self.num_rate_classes if c.rate_objective == 'classification' else 0
    if c.rate_weight > 0:
      out = c.num_segments * (classes or 1)
      rate_head = MLPHead(hidden_dims=(), out_dim=out, dtype=dtype)
    if self.contrastive:
      hidden = (c.head_hidden_dim,) if c.head_hidden_dim else ()
      contrast_head = MLPHead(hidden_dims=hidden, out_dim=c.embed_dim, dtype=dtype)
    return RateOrderNet(
      backbone=self.backbone(),
      order_head=order_head,
      rate_head=rate_head,
      contrast_head=contrast_head,
      num_segments=c.num_segments,
      num_rate_classes=classes,
    )

  def generator(self):
    c = self.settings
    return view_synthesis_lib.make_generator(
      c.generator_channels,
      c.latent_dim,
      c.temporal_kernel,
      self.config.data,
      jnp.dtype(self.config.model.dtype),
    )

  def init(self, rng, batch):
    params_rng, queue_rng, g_rng = jax.random.split(rng, 3)
    variables = self.network().init(params_rng, batch['query'], train=False)
    params = variables['params']
    state: dict[str, Any] = {'batch_stats': variables.get('batch_stats', {})}
    if self.contrastive:
      state['key_params'] = _key_part(params)
      state['key_batch_stats'] = state['batch_stats']
      state['queue'] = base.Queue.create(
        queue_rng, self.settings.queue_size, self.settings.embed_dim
      )
    if self.synthesis:
      # A randomly initialised placeholder of the right shapes: the loop replaces it with the
      # view_synthesis run's generator (`load_pretrained`) before the first step.
      state['generator'] = dict(
        self.generator().init(
          {'params': g_rng, 'latent': jax.random.fold_in(g_rng, 1)}, batch['query']
        )
      )
    return params, state

  def pretrained_runs(self) -> dict[str, str]:
    if not self.synthesis:
      return {}
    return {'rate_order.view_synthesis_workdir': self.settings.view_synthesis_workdir}

  def load_pretrained(self, params, state, load_run):
    """The frozen generator G from the view_synthesis run (`rate_order.view_synthesis_workdir`)."""
    if 'generator' not in state:
      return params, state
    c = self.settings
    variables = view_synthesis_lib.load_generator(
      load_run,
      c.view_synthesis_workdir,
      architecture=dict(
        generator_channels=c.generator_channels,
        latent_dim=c.latent_dim,
        temporal_kernel=c.temporal_kernel,
      ),
      data=self.config.data,
      expected=state['generator'],
      step=None if c.view_synthesis_step < 0 else c.view_synthesis_step,
    )
    return params, dict(state, generator=jax.tree_util.tree_map(jnp.asarray, variables))

  def synthetic_views(self, generator_variables, clips, rng):
    """G(clips) with the frozen generator, no gradient: [B, T, H, W, 3] normalised."""
    sample = self.settings.synthetic_sample
    x_s, _, _ = self.generator().apply(
      generator_variables, clips, sample=sample, rngs={'latent': rng} if sample else {}
    )
    return jax.lax.stop_gradient(x_s.astype(clips.dtype))

  def mix_synthetic_keys(self, generator_variables, query, key, choice_rng, latent_rng):
    """Key clips with G(query) in place of the other clip for a random part of the batch.

    Args: query, key: [B, T, H, W, 3] normalised clips.
    Returns: (key clips [B, T, H, W, 3], synthetic [B] bool: which keys are G's views).
    'subset': m = round(p B) samples drawn without replacement (a global permutation, so the
    choice does not depend on the device count); G runs on those m clips only.
    'bernoulli': each sample with probability p; G runs on all B clips.
    """
    c = self.settings
    batch = key.shape[0]
    if c.synthetic_key_draw == 'bernoulli':
      synthetic = self.synthetic_views(generator_variables, query, latent_rng)
      use = jax.random.bernoulli(choice_rng, c.synthetic_key_prob, (batch,))
      return jnp.where(use[:, None, None, None, None], synthetic, key), use
    count = int(c.synthetic_key_prob * batch + 0.5)  # rounded half up
    if count == 0:
      return key, jnp.zeros((batch,), bool)
    chosen = jax.random.permutation(choice_rng, batch)[:count]
    synthetic = self.synthetic_views(generator_variables, query[chosen], latent_rng)
    return key.at[chosen].set(synthetic), jnp.zeros((batch,), bool).at[chosen].set(True)

  def contrast_logits(self, q, k, queue_keys) -> tuple[jax.Array, jax.Array]:
    """(positive [B], negatives [B, N]) logits: similarity / temperature (module docstring)."""
    c = self.settings
    qn, kn = l2_normalize(q), l2_normalize(k)
    if c.similarity == 'cosine':
      pos = jnp.sum(qn * kn, axis=-1)
      neg = jnp.matmul(qn, queue_keys.T, precision=jax.lax.Precision.HIGHEST)
    else:
      squared = c.shuffle_logit == 'squared'
      scale = 0.5 if squared else 1.0
      pos = -scale * objectives.shuffle_distance(qn, kn, self.shuffle_parts, squared=squared)
      neg = -scale * objectives.pairwise_shuffle_distance(
        qn, queue_keys, self.shuffle_parts, squared=squared
      )
    return pos / c.temperature, neg / c.temperature

  def loss_fn(self, params, state, batch, rng, step):
    del step
    c = self.settings
    net = self.network()
    shuffle_rng, choice_rng, latent_rng = jax.random.split(rng, 3)
    (order_logits, rate_out, q), updates = net.apply(
      {'params': params, 'batch_stats': state['batch_stats']},
      batch['query'],
      train=True,
      mutable=['batch_stats'],
    )
    new_state = dict(state, batch_stats=updates.get('batch_stats', {}))
    loss = jnp.zeros((), jnp.float32)
    metrics: dict[str, jax.Array] = {}

    if c.order_weight > 0:
      labels = batch[f'{QUERY_PREFIX}_order_class']
      order_losses = objectives.softmax_cross_entropy(order_logits, labels)
      loss += c.order_weight * jnp.mean(order_losses)
      metrics.update(
        order_loss=jnp.mean(order_losses),
        order_accuracy=jnp.mean(jnp.argmax(order_logits, -1) == labels),
      )

    if c.rate_weight > 0:
      rates = batch[f'{QUERY_PREFIX}_rates']
      if c.rate_objective == 'regression':
        rate_loss = objectives.rate_regression_loss(rate_out, rates)
        predicted = rate_out.astype(jnp.float32)
      else:
        rate_loss = objectives.rate_classification_loss(rate_out, rates, c.rate_min)
        predicted = (jnp.argmax(rate_out, -1) + c.rate_min).astype(jnp.float32)
        metrics['rate_accuracy'] = jnp.mean(predicted == rates)
      loss += c.rate_weight * rate_loss
      metrics.update(
        rate_loss=rate_loss,
        # Table III's "Samp. error": the mean absolute error of the predicted rates.
        rate_error=jnp.mean(jnp.abs(predicted - rates.astype(jnp.float32))),
      )

    if self.contrastive:
      contrastive_loss, contrastive_metrics, new_state = self._contrastive(
        net, new_state, batch, q, shuffle_rng, choice_rng, latent_rng
      )
      loss += c.contrastive_weight * contrastive_loss
      metrics.update(contrastive_metrics)
    return loss, (metrics, new_state)

  def _contrastive(self, net, state, batch, q, shuffle_rng, choice_rng, latent_rng):
    c = self.settings
    key_input = batch['key']
    metrics = {}
    if self.synthesis:
      key_input, use = self.mix_synthetic_keys(
        state['generator'], batch['query'], key_input, choice_rng, latent_rng
      )
      metrics['synthetic_key_fraction'] = jnp.mean(use.astype(jnp.float32))

    def key_fn(x):
      k, key_updates = net.apply(
        {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
        x,
        train=True,
        mutable=['batch_stats'],
        method=RateOrderNet.embed,
      )
      return k, key_updates

    per_device = self.config.model.bn_mode == 'per_device'
    k, key_updates = base.shuffled_apply(
      key_fn, key_input, shuffle_rng if c.shuffle_bn and per_device else None
    )
    k = jax.lax.stop_gradient(l2_normalize(k))
    queue = state['queue']
    pos, neg = self.contrast_logits(q, k, queue.keys)
    logits = jnp.concatenate([pos[:, None], neg], axis=-1)
    losses = -jax.nn.log_softmax(logits, axis=-1)[:, 0]
    metrics.update(
      contrastive_loss=jnp.mean(losses),
      # The key beats every queued negative: the instance-discrimination accuracy.
      contrastive_accuracy=jnp.mean(pos > jnp.max(neg, axis=-1)),
      positive_logit=jnp.mean(pos),
      negative_logit=jnp.mean(neg),
    )
    if 'label' in batch:
      same, other = objectives.class_similarity(q, k, batch['label'])
      metrics.update({'class_similarity/same': same, 'class_similarity/other': other})
    state = dict(state, key_batch_stats=key_updates.get('batch_stats', {}), queue=queue.push(k))
    return jnp.mean(losses), metrics, state

  def after_update(self, params, state, step):
    del step
    if not self.contrastive:
      return state
    return dict(
      state, key_params=base.ema(state['key_params'], _key_part(params), self.settings.momentum)
    )

  def backbone_variables(self, params, state):
    return base.submodule_variables(params, state['batch_stats'], 'backbone')


def _key_part(params: Any) -> dict[str, Any]:
  """The parameters with a momentum copy: the backbone and the contrast head."""
  return {k: v for k, v in params.items() if k in ('backbone', 'contrast_head')}

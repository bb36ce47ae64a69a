"""`cacl`: cross-architecture contrastive learning + shuffle-degree prediction.

CACL: "Cross-Architecture Self-supervised Video Representation Learning" (Guo, Xiong, Zhong,
Wang, Guo, Han, Huang; CVPR 2022).

Per video: one clip x (the 'query' view, augmentation q), x~ = x with its frames permuted, and the
same clip under augmentation k (the 'key' view) with the SAME permutation, so (x, x~) share q and
the key pair shares k. The permutation and its shuffle-degree class come from the input pipeline
(`ShuffleDegreeSampler.banks` gathered by a stateless TF extra); they are applied on device.

Networks (the params the optimizer sees):
  G  = any registered 3D CNN (`config.model`), run on x and on x~ separately; the two pooled
       features are concatenated ([B, 2D], 1024-d for 512-d backbones) and feed
       - the contrast head (code: linear 2D -> 128) -> Gq, and
       - the SDP head (code: 2D -> 512 -> ReLU -> dropout 0.5 -> F classes).
  T  = `VideoTransformer` over the 2F frame tokens [x, x~] (CLS -> linear 128 -> Tq). Its frame
       tokens come from a FROZEN 2D encoder (the `frames` stage), which lives in `state`, so no
       optimizer update, weight decay or EMA can touch it. Frozen per-frame features of x~ are
       the features of x permuted, so the encoder runs once per view, not twice. With
       `frame_input='difference'` the tokens are instead the features of the T - 1 frame
       differences of x and of x~ (a frames stage trained on difference images, `frames.input`),
       so that T reads the same residual input as the tiny G: [B, 2(T - 1), F].
Momentum copies (state) of G (+ contrast head) and T (+ head) give Gk and Tk.

Contrastive loss (eq. 3-4), positives chosen by `positive_pairs`:
  s1 = cos(Gq, Gk), s2 = cos(Gq, Tq), s3 = cos(Gq, Tk), s4 = cos(Tq, Tk)   (each / tau)
  negatives cos(Gq, n_j) / tau, n_j from a queue of past G keys (and T keys, as in the code);
  `objectives.multi_positive_info_nce(aggregation='sum' (paper) | 'independent' (code))`.
SDP loss (eq. 5-6): cross entropy of the shuffle-degree class (Levenshtein distance of the
permutation to the identity), weight `sdp_weight`.

Table 1 rows are configs of this one method: SDP only (`contrastive_weight=0`: no key view, no
queue, no momentum encoders), SDP* (`sdp_uniform=False`), V-MoCo (`sdp_weight=0`,
`positive_pairs=('gq_gk',)`, `contrast_input='clip'`), +T rows (pairs with T); see configs/cacl.py.

Options for the ablation experiments (docs/methods/cacl.md; every default is the path above):
`transformer_negatives` (+ an InfoNCE anchored on Tq against the queue), `transformer_momentum`
(T's own EMA momentum), `tq_tk_collapse_threshold` (logs the first step cos(Tq, Tk) passes it),
`key_shuffle` (the key's own permutation), `key_order` (the released code's [x~_k, x_k]),
`sdp_sampler` (the released code's k-position shuffle), `bn_groups` (ghost BN for G, so that
shuffle-BN acts on one device). T's own learning rate is the generic
`optim.lr_multipliers.{transformer,transformer_head}`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvssl import models, objectives
from jaxvssl.errors import ConfigError
from jaxvssl.inputs import permutations
from jaxvssl.inputs import views as views_lib
from jaxvssl.inputs.permutations import ShuffleDegreeSampler
from jaxvssl.methods import base, registry
from jaxvssl.methods import frames as frames_lib
from jaxvssl.models.residual import frame_differences
from jaxvssl.objectives import l2_normalize
from jaxvssl.models.heads import MLPHead
from jaxvssl.models.video_transformer import POOLS as TRANSFORMER_POOLS
from jaxvssl.models.video_transformer import VideoTransformer

# The four positive pairs of eq. 3, in the paper's order (Table 2 adds them in this order).
POSITIVE_PAIRS = ('gq_gk', 'gq_tq', 'gq_tk', 'tq_tk')
AGGREGATIONS = ('sum', 'independent')
CONTRAST_INPUTS = ('concat', 'clip')
KEY_SHUFFLES = ('shared', 'independent')
KEY_ORDERS = ('paper', 'released')
SDP_SAMPLERS = permutations.SAMPLERS  # ('paper', 'released')
SDP_PREFIX = 'sdp'  # batch keys 'sdp_perm' int32 [B, F] and 'sdp_label' int32 [B]
# key_shuffle='independent': the key clip's own permutation, 'sdp_key_perm' int32 [B, F].
SDP_KEY_PREFIX = 'sdp_key'
# The top-level parameter subtrees of T (CACLNet): the video transformer and its 128-d head.
TRANSFORMER_PARAMS = ('transformer', 'transformer_head')


def permute_frames(clips: jax.Array, perms: jax.Array) -> jax.Array:
  """`clips` [B, T, ...], `perms` int [B, T] -> `out[b, t] = clips[b, perms[b, t]]`."""
  return jax.vmap(lambda clip, perm: jnp.take(clip, perm, axis=0))(clips, perms)


class CACLNet(nn.Module):
  """The trainable networks: G (backbone + heads) and T (transformer + head).

  Parameter names: 'backbone', 'contrast_head', 'sdp_head' (G); 'transformer',
  'transformer_head' (T). Absent parts (None) have no parameters.
  """

  backbone: nn.Module
  contrast_head: nn.Module | None
  sdp_head: nn.Module | None
  transformer: nn.Module | None
  transformer_head: nn.Module | None
  concat_shuffled: bool = True

  def encode_video(
    self,
    x: jax.Array,
    x_shuffled: jax.Array | None,
    train: bool,
    with_sdp: bool = True,
    with_contrast: bool = True,
    shuffled_first: bool = False,
  ) -> tuple[jax.Array | None, jax.Array | None]:
    """G: clips [B, T, H, W, C] (and their shuffled copies) -> (embedding [B, E], SDP logits).

    shuffled_first=True: G runs on x~ first and the features are concatenated as [G(x~), G(x)]
    (the released code's key pair, `cacl.key_order='released'`); a head on G(x) alone
    (contrast_input='clip') still sees G(x).
    """
    needs_shuffled = self.concat_shuffled or (with_sdp and self.sdp_head is not None)
    if shuffled_first and x_shuffled is not None and needs_shuffled:
      feature_shuffled = self.backbone(x_shuffled, train=train)
      feature = self.backbone(x, train=train)
      both = jnp.concatenate([feature_shuffled, feature], axis=-1)
    else:
      feature = self.backbone(x, train=train)
      if x_shuffled is not None and needs_shuffled:
        # x and x~ go through G separately (own BatchNorm batch statistics), as in the paper.
        both = jnp.concatenate([feature, self.backbone(x_shuffled, train=train)], axis=-1)
      else:
        both = None
    embedding = logits = None
    if with_contrast and self.contrast_head is not None:
      embedding = self.contrast_head(both if self.concat_shuffled else feature, train=train)
    if with_sdp and self.sdp_head is not None:
      logits = self.sdp_head(both, train=train)
    return embedding, logits

  def encode_tokens(self, tokens: jax.Array, train: bool) -> jax.Array:
    """T: frozen frame features [B, 2T, F] -> embedding [B, E]."""
    return self.transformer_head(self.transformer(tokens, train=train), train=train)

  def __call__(self, x, x_shuffled, tokens, train: bool = False):
    """Touches every part (used by `init`)."""
    out = self.encode_video(x, x_shuffled, train)
    t = self.encode_tokens(tokens, train) if self.transformer is not None else None
    return out, t


@registry.register
class CACL(base.Method):
  """CACL: G/T cross-architecture MoCo with four positives + shuffle-degree prediction."""

  name = 'cacl'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        # Contrastive learning (V-MoCo and the cross-architecture positives).
        contrastive_weight=1.0,  # 0: no contrastive loss (Table 1 "SDP" rows)
        positive_pairs=POSITIVE_PAIRS,  # any non-empty subset (Table 2)
        positive_aggregation='sum',  # 'sum' (paper eq. 4) | 'independent' (released code)
        contrast_input='concat',  # 'concat': head on [G(x), G(x~)]; 'clip': on G(x) (V-MoCo)
        contrast_head_hidden_dim=0,  # 0: linear 1024 -> 128 as in the code (paper: "FFN")
        embed_dim=128,
        queue_size=6400,  # code; a multiple of the keys pushed per step
        enqueue_transformer_keys=True,  # code: T keys are negatives too (when T is used)
        temperature=0.07,
        momentum=0.999,
        shuffle_bn=True,  # effective with model.bn_mode='per_device' or bn_groups > 1
        # Options for the ablation experiments (docs/methods/cacl.md); defaults = the paper path.
        transformer_negatives=False,  # + InfoNCE anchored on Tq: positive Tk, negatives the queue
        transformer_negatives_weight=1.0,  # its weight in the total loss
        transformer_momentum=-1.0,  # EMA momentum of T's key copy; < 0: the same as `momentum`
        tq_tk_collapse_threshold=0.0,  # > 0: log the first step whose mean cos(Tq, Tk) exceeds it
        key_shuffle='shared',  # x~_k: 'shared' (the query's permutation) | 'independent' (own)
        key_order='paper',  # key pair [x_k, x~_k] ('paper') | [x~_k, x_k] ('released' code)
        bn_groups=0,  # > 0: G's BatchNorm over this many groups of the batch (ghost BN; with
        # shuffle_bn the key batch is shuffled across them, shuffle-BN on one device)
        # Shuffle-degree prediction.
        sdp_weight=1.0,  # paper; the released script uses 0.0
        sdp_uniform=True,  # False: SDP* (classes as uniformly random permutations give)
        sdp_sampler='paper',  # 'paper' | 'released': the released code's k-position shuffle
        sdp_hidden_dim=512,
        sdp_dropout=0.5,
        sdp_bank_size=1024,  # permutations per class in the sampler's banks
        sdp_natural_samples=100_000,  # random permutations that estimate SDP*'s class frequencies
        # Transformer T and its frozen frame encoder.
        transformer_dim=768,
        transformer_layers=6,
        transformer_heads=6,
        transformer_mlp_ratio=4.0,
        transformer_dropout=0.0,
        transformer_pool='cls',  # paper: CLS; 'mean': mean of the frame tokens (docs)
        frame_encoder='resnet50',  # must match the frames run
        frame_encoder_width=1.0,
        frame_encoder_workdir='',  # the frames run directory (needed when T is used)
        frame_encoder_step=-1,  # -1: its latest checkpoint
        frame_chunk_size=0,  # >0: frozen encoder over this many frames at a time (memory)
        frame_input='rgb',  # the frames run's `frames.input`: 'rgb' | 'difference' (docs)
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c = config.cacl

    def fail(key, why):
      raise ConfigError(f'config.cacl.{key}={c[key]!r}: {why}')

    if c.contrastive_weight < 0 or c.sdp_weight < 0:
      fail('contrastive_weight', f'and sdp_weight={c.sdp_weight} must be >= 0')
    if c.contrastive_weight == 0 and c.sdp_weight == 0:
      fail('contrastive_weight', 'and sdp_weight are both 0: nothing to learn')
    pairs = tuple(c.positive_pairs)
    if not pairs or len(set(pairs)) != len(pairs) or set(pairs) - set(POSITIVE_PAIRS):
      fail('positive_pairs', f'must be a non-empty subset of {POSITIVE_PAIRS} without repeats')
    if c.positive_aggregation not in AGGREGATIONS:
      fail('positive_aggregation', f'must be one of {AGGREGATIONS}')
    if c.contrast_input not in CONTRAST_INPUTS:
      fail('contrast_input', f'must be one of {CONTRAST_INPUTS}')
    if c.temperature <= 0:
      fail('temperature', 'must be positive')
    if not 0.0 <= c.momentum < 1.0:
      fail('momentum', 'must be in [0, 1)')
    if c.embed_dim <= 0 or c.contrast_head_hidden_dim < 0 or c.sdp_hidden_dim < 0:
      fail('embed_dim', 'must be positive (and the hidden dims >= 0)')
    if c.transformer_pool not in TRANSFORMER_POOLS:
      fail('transformer_pool', f'must be one of {TRANSFORMER_POOLS}')
    if c.transformer_pool != 'cls' and not _uses_t(c):
      fail('transformer_pool', 'changes T, which this row does not use (positive_pairs)')
    if not 0.0 <= c.sdp_dropout < 1.0 or not 0.0 <= c.transformer_dropout < 1.0:
      fail('sdp_dropout', f'and transformer_dropout={c.transformer_dropout} must be in [0, 1)')
    if c.sdp_bank_size < 1 or c.sdp_natural_samples < 1:
      fail('sdp_bank_size', f'and sdp_natural_samples={c.sdp_natural_samples} must be >= 1')
    if c.sdp_sampler not in SDP_SAMPLERS:
      fail('sdp_sampler', f'must be one of {SDP_SAMPLERS}')
    if c.key_shuffle not in KEY_SHUFFLES:
      fail('key_shuffle', f'must be one of {KEY_SHUFFLES}')
    if c.key_order not in KEY_ORDERS:
      fail('key_order', f'must be one of {KEY_ORDERS}')
    uses_key_pair = c.contrastive_weight > 0 and (c.contrast_input == 'concat' or _uses_t(c))
    for key, default in (('key_shuffle', 'shared'), ('key_order', 'paper')):
      if c[key] != default and not uses_key_pair:
        fail(
          key,
          "has no effect: the key's shuffled copy is used only with contrastive_weight > 0 "
          "and contrast_input='concat' or a positive pair with T",
        )
    if c.bn_groups < 0 or (c.bn_groups and config.batch_size % c.bn_groups):
      fail('bn_groups', f'must be 0 or a positive divisor of batch_size={config.batch_size}')
    if c.transformer_negatives_weight <= 0:
      fail('transformer_negatives_weight', 'must be positive')
    if c.transformer_momentum >= 1.0:
      fail('transformer_momentum', 'must be in [0, 1), or < 0 for the same as cacl.momentum')
    if not 0.0 <= c.tq_tk_collapse_threshold <= 1.0:
      fail('tq_tk_collapse_threshold', 'must be in [0, 1] (0: off)')
    for key, on in (
      ('transformer_negatives', c.transformer_negatives),
      ('transformer_momentum', c.transformer_momentum >= 0),
      ('tq_tk_collapse_threshold', c.tq_tk_collapse_threshold > 0),
    ):
      if on and not _uses_t(c):
        fail(key, 'needs the transformer T: contrastive_weight > 0 and a positive pair with T')
    if config.data.num_frames < 3:
      raise ConfigError(
        f'config.data.num_frames={config.data.num_frames}: shuffle-degree '
        'prediction needs at least 3 frames'
      )
    if c.contrastive_weight > 0:
      per_step = config.batch_size * (2 if _enqueues_t(c) else 1)
      if c.queue_size <= 0 or c.queue_size % per_step:
        fail(
          'queue_size',
          f'must be a positive multiple of the {per_step} keys pushed per step '
          f'(batch_size={config.batch_size}'
          f'{" x 2: G and T keys" if _enqueues_t(c) else ""})',
        )
    if _uses_t(c):
      if c.frame_encoder not in models.available_frame_encoders():
        fail('frame_encoder', f'unknown; known: {models.available_frame_encoders()}')
      if c.frame_encoder_width <= 0:
        fail('frame_encoder_width', 'must be positive')
      if c.frame_input not in frames_lib.FRAME_INPUTS:
        fail('frame_input', f'choose one of {frames_lib.FRAME_INPUTS}')
      if not c.frame_encoder_workdir:
        fail(
          'frame_encoder_workdir',
          f'must name the frames run directory: positive_pairs={pairs} use the transformer T',
        )
      if (
        c.transformer_dim <= 0
        or c.transformer_heads <= 0
        or c.transformer_dim % c.transformer_heads
      ):
        fail(
          'transformer_dim',
          f'must be a positive multiple of transformer_heads={c.transformer_heads}',
        )
      if c.transformer_layers < 1:
        fail('transformer_layers', 'must be >= 1')
      if c.frame_chunk_size < 0:
        fail('frame_chunk_size', 'must be >= 0')

  # --- what this configuration uses ------------------------------------------------------------
  @property
  def contrastive(self) -> bool:
    return self.config.cacl.contrastive_weight > 0

  @property
  def uses_transformer(self) -> bool:
    return _uses_t(self.config.cacl)

  @property
  def sdp(self) -> bool:
    return self.config.cacl.sdp_weight > 0

  # --- data --------------------------------------------------------------------------------------
  def views(self):
    d = self.config.data
    # One clip; the key view is the same frames under another augmentation (temporal group 0).
    views = [
      views_lib.ViewSpec(
        name='query', num_frames=d.num_frames, stride=d.stride, temporal_group=0, augment_group='q'
      )
    ]
    if self.contrastive:
      views.append(
        views_lib.ViewSpec(
          name='key', num_frames=d.num_frames, stride=d.stride, temporal_group=0, augment_group='k'
        )
      )
    return tuple(views)

  @functools.cached_property
  def sampler(self) -> ShuffleDegreeSampler:
    c = self.config.cacl
    return ShuffleDegreeSampler(
      num_frames=self.config.data.num_frames,
      uniform=c.sdp_uniform,
      seed=self.config.seed,
      bank_size=c.sdp_bank_size,
      sampler=c.sdp_sampler,
    )

  def sdp_class_probs(self) -> np.ndarray | None:
    """None (uniform classes) or SDP*'s class frequencies under uniformly random permutations."""
    if self.config.cacl.sdp_uniform:
      return None
    c = self.config.cacl
    _, labels = self.sampler.sample(
      c.sdp_natural_samples, rng=np.random.default_rng([self.config.seed, 2])
    )
    return np.bincount(labels, minlength=self.sampler.num_classes) / len(labels)

  def extras(self):
    c = self.config.cacl
    if c.sdp_sampler == 'released':
      # The released code's sampler, exact in TF (no banks): `views.subset_shuffle_extra`.
      def extra(name):
        return views_lib.subset_shuffle_extra(
          self.config.data.num_frames, name=name, uniform=c.sdp_uniform
        )
    else:
      class_probs = self.sdp_class_probs()

      def extra(name):
        return views_lib.permutation_bank_extra(
          self.sampler.banks, name=name, class_probs=class_probs
        )

    return tuple(extra(name) for name in self._permutation_prefixes())

  def _permutation_prefixes(self) -> tuple[str, ...]:
    """The batch's permutation extras: 'sdp' and, with key_shuffle='independent', 'sdp_key'.

    The key's own permutation is drawn by the same sampler from the example's seed under another
    extra name, so the query's draws (and every other draw of the pipeline) are unchanged.
    """
    if self.config.cacl.key_shuffle == 'independent':
      return (SDP_PREFIX, SDP_KEY_PREFIX)
    return (SDP_PREFIX,)

  def example_batch(self, batch_size: int) -> dict[str, jax.Array]:
    batch = super().example_batch(batch_size)
    f = self.config.data.num_frames
    for prefix in self._permutation_prefixes():
      batch[f'{prefix}_perm'] = jnp.broadcast_to(jnp.arange(f, dtype=jnp.int32), (batch_size, f))
      batch[f'{prefix}_label'] = jnp.zeros((batch_size,), jnp.int32)
    return batch

  # --- networks ---------------------------------------------------------------------------------
  def network(self) -> CACLNet:
    c = self.config.cacl
    dtype = jnp.dtype(self.config.model.dtype)
    contrast_head = sdp_head = transformer = transformer_head = None
    if self.contrastive:
      hidden = (c.contrast_head_hidden_dim,) if c.contrast_head_hidden_dim else ()
      contrast_head = MLPHead(hidden_dims=hidden, out_dim=c.embed_dim, dtype=dtype)
    if self.sdp:
      sdp_head = MLPHead(
        hidden_dims=(c.sdp_hidden_dim,) if c.sdp_hidden_dim else (),
        out_dim=self.sampler.num_classes,
        dropout=c.sdp_dropout,
        dtype=dtype,
      )
    if self.contrastive and self.uses_transformer:
      transformer = VideoTransformer(
        token_dim=c.transformer_dim,
        num_layers=c.transformer_layers,
        num_heads=c.transformer_heads,
        mlp_ratio=c.transformer_mlp_ratio,
        dropout=c.transformer_dropout,
        dtype=dtype,
        pool=c.transformer_pool,
      )
      transformer_head = MLPHead(hidden_dims=(), out_dim=c.embed_dim, dtype=dtype)
    return CACLNet(
      backbone=self.g_backbone(),
      contrast_head=contrast_head,
      sdp_head=sdp_head,
      transformer=transformer,
      transformer_head=transformer_head,
      concat_shuffled=c.contrast_input == 'concat',
    )

  def g_backbone(self) -> nn.Module:
    """G's backbone during pretraining: `backbone()`, or with `cacl.bn_groups` BN groups.

    The variables are the same either way (groups change only the batch statistics), so the
    downstream `backbone()` (evaluation, finetuning) reads them unchanged.
    """
    groups = self.config.cacl.bn_groups
    if groups > 0:
      return base.build_backbone(self.config, self.num_devices, bn_groups=groups)
    return self.backbone()

  def frame_encoder(self) -> nn.Module:
    c = self.config.cacl
    return models.get_frame_encoder(
      c.frame_encoder,
      width_multiplier=c.frame_encoder_width,
      dtype=jnp.dtype(self.config.model.dtype),
    )

  def pretrained_runs(self) -> dict[str, str]:
    if not (self.contrastive and self.uses_transformer):
      return {}
    return {'cacl.frame_encoder_workdir': self.config.cacl.frame_encoder_workdir}

  def load_pretrained(self, params, state, load_run):
    """The frozen frame encoder of T from the frames run (`config.cacl.frame_encoder_workdir`)."""
    if 'frame_encoder' not in state:
      return params, state
    c = self.config.cacl
    variables = frames_lib.load_frame_encoder(
      load_run,
      c.frame_encoder_workdir,
      encoder=c.frame_encoder,
      width_multiplier=c.frame_encoder_width,
      expected=state['frame_encoder'],
      step=None if c.frame_encoder_step < 0 else c.frame_encoder_step,
      frame_input=(c.frame_input, int(self.config.data.stride)),
    )
    return params, dict(state, frame_encoder=jax.tree_util.tree_map(jnp.asarray, variables))

  def frame_features(self, frame_encoder_variables: Any, clips: jax.Array) -> jax.Array:
    """Frozen per-frame features: clips [B, T, H, W, C] -> [B, T, F], no gradient, BN in eval."""
    b, t = clips.shape[:2]
    flat = clips.reshape((b * t,) + clips.shape[2:])
    encode = functools.partial(self.frame_encoder().apply, frame_encoder_variables, train=False)
    chunk = self.config.cacl.frame_chunk_size
    if chunk and (b * t) % chunk == 0 and chunk < b * t:
      feats = jax.lax.map(encode, flat.reshape((-1, chunk) + flat.shape[1:])).reshape(b * t, -1)
    else:
      feats = encode(flat)
    return jax.lax.stop_gradient(feats.astype(jnp.float32)).reshape(b, t, -1)

  def tokens(
    self,
    frame_encoder_variables: Any,
    clips: jax.Array,
    perms: jax.Array,
    shuffled_first: bool = False,
  ) -> jax.Array:
    """T's input [x, x~]: [B, 2T, F] frozen frame features of the clip then of its shuffled copy.

    shuffled_first=True: [x~, x] (the released code's key, `cacl.key_order='released'`).
    `frame_input='difference'`: features of the frame differences of x and of x~ (a shuffled
    clip's differences are not a permutation of the natural clip's), [B, 2(T - 1), F].
    """
    if self.config.cacl.frame_input == 'difference':
      feats = self.frame_features(frame_encoder_variables, frame_differences(clips))
      shuffled = self.frame_features(
        frame_encoder_variables, frame_differences(permute_frames(clips, perms))
      )
    else:
      feats = self.frame_features(frame_encoder_variables, clips)
      shuffled = permute_frames(feats, perms)
    parts = [shuffled, feats] if shuffled_first else [feats, shuffled]
    return jnp.concatenate(parts, axis=1)

  def init(self, rng, batch):
    c = self.config.cacl
    params_rng, dropout_rng, queue_rng = jax.random.split(rng, 3)
    x = batch['query']
    x_shuffled = permute_frames(x, batch[f'{SDP_PREFIX}_perm'])
    state: dict[str, Any] = {}
    tokens = None
    if self.contrastive and self.uses_transformer:
      # A randomly initialised placeholder of the right shapes: the loop replaces it with the
      # frames run's weights (`load_pretrained`) before the first step; a checkpoint holds them.
      size = self.config.data.crop_size
      state['frame_encoder'] = self.frame_encoder().init(
        jax.random.fold_in(rng, 3), jnp.zeros((1, size, size, 3), jnp.float32)
      )
      tokens = self.tokens(state['frame_encoder'], x, batch[f'{SDP_PREFIX}_perm'])
    variables = self.network().init(
      {'params': params_rng, 'dropout': dropout_rng}, x, x_shuffled, tokens, train=False
    )
    params = variables['params']
    state['batch_stats'] = variables.get('batch_stats', {})
    if self.contrastive:
      state['key_params'] = _key_part(params)
      state['key_batch_stats'] = state['batch_stats']
      state['queue'] = base.Queue.create(queue_rng, c.queue_size, c.embed_dim)
    if c.tq_tk_collapse_threshold > 0:
      # The first step (as numbered in metrics.jsonl) whose mean cos(Tq, Tk) exceeded the
      # threshold; -1 until then.
      state['tq_tk_collapse_step'] = jnp.full((), -1, jnp.int32)
    return params, state

  def loss_fn(self, params, state, batch, rng, step):
    c = self.config.cacl
    net = self.network()
    dropout_rng, shuffle_rng, t_rng = jax.random.split(rng, 3)
    perms = batch[f'{SDP_PREFIX}_perm']
    x = batch['query']
    x_shuffled = permute_frames(x, perms)
    (gq, sdp_logits), updates = net.apply(
      {'params': params, 'batch_stats': state['batch_stats']},
      x,
      x_shuffled,
      train=True,
      rngs={'dropout': dropout_rng},
      mutable=['batch_stats'],
      method=CACLNet.encode_video,
    )
    new_state = dict(state, batch_stats=updates.get('batch_stats', {}))
    loss = jnp.zeros((), jnp.float32)
    metrics: dict[str, jax.Array] = {}

    if self.sdp:
      labels = batch[f'{SDP_PREFIX}_label']
      sdp_losses = objectives.softmax_cross_entropy(sdp_logits, labels)
      loss += c.sdp_weight * jnp.mean(sdp_losses)
      metrics.update(
        sdp_loss=jnp.mean(sdp_losses), sdp_accuracy=jnp.mean(jnp.argmax(sdp_logits, -1) == labels)
      )

    if self.contrastive:
      contrastive_loss, contrastive_metrics, new_state, extra_loss = self._contrastive(
        net, params, new_state, batch, perms, gq, shuffle_rng, t_rng, step
      )
      loss += c.contrastive_weight * contrastive_loss
      if extra_loss is not None:  # cacl.transformer_negatives
        loss += extra_loss
      metrics.update(contrastive_metrics)
    return loss, (metrics, new_state)

  def _contrastive(self, net, params, state, batch, perms, gq, shuffle_rng, t_rng, step):
    """Eq. 3-4 with the configured positives.

    Returns (loss, metrics, state with new keys, the weighted Tq-anchored InfoNCE of
    `cacl.transformer_negatives` or None).
    """
    c = self.config.cacl
    xk = batch['key']
    with_shuffled = c.contrast_input == 'concat'
    # The key's shuffled copy: the query's permutation (paper, code) or its own.
    key_perms = batch[f'{SDP_KEY_PREFIX}_perm'] if c.key_shuffle == 'independent' else perms
    shuffled_first = c.key_order == 'released'

    def key_fn(pair):  # pair: [B, 2, T, H, W, C] = (key clip, its shuffled copy)
      (k, _), key_updates = net.apply(
        {'params': state['key_params'], 'batch_stats': state['key_batch_stats']},
        pair[:, 0],
        pair[:, 1] if with_shuffled else None,
        train=True,
        with_sdp=False,
        shuffled_first=shuffled_first,
        mutable=['batch_stats'],
        method=CACLNet.encode_video,
      )
      return k, key_updates

    # Shuffle-BN acts where BatchNorm statistics are per group: per device, or cacl.bn_groups.
    grouped = self.config.model.bn_mode == 'per_device' or c.bn_groups > 1
    shuffle = shuffle_rng if c.shuffle_bn and grouped else None
    key_pair = jnp.stack([xk, permute_frames(xk, key_perms)], axis=1)
    gk, key_updates = base.shuffled_apply(key_fn, key_pair, shuffle)
    gq = l2_normalize(gq)
    gk = jax.lax.stop_gradient(l2_normalize(gk))
    sims = {'gq_gk': jnp.sum(gq * gk, axis=-1)}
    new_keys = [gk]
    if self.uses_transformer:
      frozen = state['frame_encoder']
      tq = l2_normalize(
        net.apply(
          {'params': params},
          self.tokens(frozen, batch['query'], perms),
          train=True,
          rngs={'dropout': t_rng},
          method=CACLNet.encode_tokens,
        )
      )
      # Key T: momentum weights, deterministic (no dropout noise in the targets).
      tk = jax.lax.stop_gradient(
        l2_normalize(
          net.apply(
            {'params': state['key_params']},
            self.tokens(frozen, xk, key_perms, shuffled_first=shuffled_first),
            train=False,
            method=CACLNet.encode_tokens,
          )
        )
      )
      sims.update(
        gq_tq=jnp.sum(gq * tq, -1), gq_tk=jnp.sum(gq * tk, -1), tq_tk=jnp.sum(tq * tk, -1)
      )
      if c.enqueue_transformer_keys:
        new_keys.append(tk)
    queue = state['queue']
    positives = jnp.stack([sims[p] for p in c.positive_pairs], axis=-1) / c.temperature  # [B, P]
    negatives = gq @ queue.keys.T  # [B, N]
    losses = objectives.multi_positive_info_nce(
      positives, negatives / c.temperature, c.positive_aggregation
    )
    metrics = dict(
      contrastive_loss=jnp.mean(losses),
      contrastive_accuracy=jnp.mean(
        jnp.max(positives, -1) * c.temperature > jnp.max(negatives, -1)
      ),
      negative_similarity=jnp.mean(negatives),
    )
    # Table 3's quantities: the mean cosine of every available positive pair.
    metrics.update({f'similarity/{name}': jnp.mean(s) for name, s in sims.items()})
    # Invariance or collapse? The same cosine to the OTHER videos' keys of the batch: an output
    # that ignores its input scores as high there as on its positive pair.
    videos = jnp.arange(gq.shape[0])
    metrics['similarity/gq_gk_other'] = objectives.class_similarity(gq, gk, videos)[1]
    if self.uses_transformer:
      metrics['similarity/tq_tk_other'] = objectives.class_similarity(tq, tk, videos)[1]
    extra_loss = None
    if c.transformer_negatives:
      # InfoNCE anchored on Tq: positive Tk, negatives Tq . queue (G and, by default, T keys), so
      # that the (Tq, Tk) pair is contrasted against something (eq. 4 gives it no negatives).
      t_negatives = tq @ queue.keys.T  # [B, N]
      t_losses = objectives.info_nce(tq, tk, queue.keys, c.temperature)
      extra_loss = c.transformer_negatives_weight * jnp.mean(t_losses)
      metrics.update(
        transformer_nce_loss=jnp.mean(t_losses),
        transformer_nce_accuracy=jnp.mean(sims['tq_tk'] > jnp.max(t_negatives, -1)),
      )
    if c.tq_tk_collapse_threshold > 0:
      first = state['tq_tk_collapse_step']
      crossed = jnp.mean(sims['tq_tk']) > c.tq_tk_collapse_threshold
      # `step` is the step count before this update; metrics.jsonl numbers it step + 1.
      first = jnp.where((first < 0) & crossed, jnp.asarray(step, jnp.int32) + 1, first)
      state = dict(state, tq_tk_collapse_step=first)
      metrics['collapse_step/tq_tk'] = first
    state = dict(
      state,
      key_batch_stats=key_updates.get('batch_stats', {}),
      queue=queue.push(jnp.concatenate(new_keys, axis=0)),
    )
    return jnp.mean(losses), metrics, state, extra_loss

  def after_update(self, params, state, step):
    del step
    if not self.contrastive:
      return state
    c = self.config.cacl
    online = _key_part(params)
    if c.transformer_momentum < 0:  # one momentum for G and T (the paper)
      return dict(state, key_params=base.ema(state['key_params'], online, c.momentum))
    key_params = {
      name: base.ema(
        tree, online[name], c.transformer_momentum if name in TRANSFORMER_PARAMS else c.momentum
      )
      for name, tree in state['key_params'].items()
    }
    return dict(state, key_params=key_params)

  def backbone_variables(self, params, state):
    return base.submodule_variables(params, state['batch_stats'], 'backbone')


def _uses_t(c: ml_collections.ConfigDict) -> bool:
  return c.contrastive_weight > 0 and any(p != 'gq_gk' for p in c.positive_pairs)


def _enqueues_t(c: ml_collections.ConfigDict) -> bool:
  return _uses_t(c) and c.enqueue_transformer_keys


def _key_part(params: Any) -> dict[str, Any]:
  """The parameters with a momentum copy: everything but the SDP head (keys never classify)."""
  return {k: v for k, v in params.items() if k != 'sdp_head'}

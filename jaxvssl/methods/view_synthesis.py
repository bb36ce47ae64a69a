"""`view_synthesis`: rate_order's view-synthesis stage (TCSVT 2021, Sec. III-G, Fig. 3, eq. 13-16).

A variational autoencoder G (`models.vae.VideoVAE`) turns a clip x into a synthetic view
x_s = G(x) that should keep x's motion and lose its appearance; a small optical-flow network O
(`models.flow.FlowNet`) predicts the flow between consecutive frames. The stage is an ordinary
jaxvssl run: `jaxvssl train --config=configs/view_synthesis.py:tiny --workdir=W` writes a run
directory whose generator `rate_order` loads (`config.rate_order.view_synthesis_workdir = W`)
through the loop's pretrained-weights hook (`Method.load_pretrained`, `load_generator`) and uses,
frozen, to make key candidates. Only G is kept, as in the paper.

  L_view = w_photo  L_photo(O)             photometric: frame t + 1 warped by O(x)_t onto frame t,
                                           Charbonnier rho(d) = sqrt(d^2 + eps^2), eps = 1e-3 (eq. 13)
         + w_kl     L_KL(G)                KL of the VAE latent to N(0, I) (eq. 14), per latent element
         + w_max    L_infomax(G)           rho(O(x_s) - sg(O(x))) (eq. 15); O's parameters are
                                           stop-gradient in O(x_s): "the parameters of the optical
                                           flow estimator are resumed to the original values"
         + w_min    L_infomin(G)           info-min on f(x), f(x_s), f a frozen feature extractor
         + w_rec    L_rec(G)               rho(x_s - x), the autoencoder's reconstruction term
         (+ w_smooth rho(grad O(x)): an option, 0 by default)

Reconstruction: eq. 13-16 list only the terms the paper adds to an "autoencoder"; its
reconstruction term is implied, not written. Without it (`reconstruction_weight=0`) nothing ties
x_s to x but info-max, and the KL pushes the latent to carry nothing about x. The default keeps it
at weight 1 (docs/methods/rate_order.md, "Choices the paper leaves open").

Info-min (`infomin_form`): the paper's text minimises the mutual information of x and x_s "to
suppress the appearance dependence", but eq. 16 writes L = -cos(f(sg x), f(x_s)), whose minimum is
the MOST similar view (an identity generator is optimal). 'text' (default) minimises
+cos(f(sg x), f(x_s)); 'equation' is eq. 16 literally. f is the config's backbone (`config.model`,
RGB input: appearance is what it must see) at random initialisation, frozen in `state`
('infomin_encoder'), applied with its initial BatchNorm statistics; `config.init_from` can replace
it by pretrained weights. Nothing trains f: minimising a similarity through a trainable f would
reward f for ignoring its input.

Gradients are routed so that one loss gives two independent optimizers: O's parameters receive
the photometric (and smoothness) gradient only, G's the KL, info-max and info-min gradients only
(tested). SGD with momentum and Adam update each parameter from its own gradient, so the loop's
single optimizer over {'generator', 'flow'} IS the paper's "independent optimizer" for O; a
different learning rate for O is `--config.optim.lr_multipliers.flow=<factor>` (an
`optax.partition`, i.e. `optax.multi_transform`, in `jaxvssl/optim.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvssl import objectives
from jaxvssl.errors import ConfigError, PretrainedWeightsError
from jaxvssl.inputs.views import ViewSpec
from jaxvssl.methods import base, registry
from jaxvssl.models.flow import FlowNet
from jaxvssl.models.vae import VideoVAE

INFOMIN_FORMS = ('text', 'equation')
# The generator's architecture keys, which rate_order repeats (`rate_order.generator_*`) and
# `load_generator` compares.
GENERATOR_KEYS = ('generator_channels', 'latent_dim', 'temporal_kernel')


def make_generator(
  channels: Sequence[int],
  latent_dim: int,
  temporal_kernel: int,
  data: ml_collections.ConfigDict,
  dtype: Any = jnp.float32,
) -> VideoVAE:
  """G for clips normalised with `data.mean` / `data.std` (shared with rate_order)."""
  return VideoVAE(
    channels=tuple(int(c) for c in channels),
    latent_dim=int(latent_dim),
    temporal_kernel=int(temporal_kernel),
    mean=tuple(float(m) for m in data.mean),
    std=tuple(float(s) for s in data.std),
    dtype=dtype,
  )


def flow_smoothness(flow: jax.Array, eps: float) -> jax.Array:
  """Mean Charbonnier penalty of the flow's horizontal and vertical differences `[B, T, H, W, 2]`."""
  dx = flow[:, :, :, 1:] - flow[:, :, :, :-1]
  dy = flow[:, :, 1:] - flow[:, :, :-1]
  return 0.5 * (
    jnp.mean(objectives.charbonnier(dx, eps)) + jnp.mean(objectives.charbonnier(dy, eps))
  )


@registry.register
class ViewSynthesis(base.Method):
  """rate_order's view-synthesis stage: VAE generator G + flow network O (module docstring)."""

  name = 'view_synthesis'

  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        generator_channels=(32, 64),  # VAE encoder widths (stride-2 stages); decoder mirrors
        latent_dim=16,  # channels of the spatial latent
        temporal_kernel=3,  # temporal extent of G's 3 x 3 convs (time is never strided)
        flow_channels=(32, 64, 96),  # O's U-Net widths
        photometric_weight=1.0,  # eq. 13 (trains O)
        kl_weight=1.0,  # eq. 14, the KL per latent element (trains G)
        infomax_weight=1.0,  # eq. 15 (trains G)
        infomin_weight=1.0,  # eq. 16 (trains G)
        infomin_form='text',  # 'text': minimise cos (the paper's intent) | 'equation': -cos
        reconstruction_weight=1.0,  # rho(x_s - x): the autoencoder's own term (0: eq. 13-16 only)
        smoothness_weight=0.0,  # option: first-order flow smoothness; not in the paper
        charbonnier_eps=1e-3,  # rho(d) = sqrt(d^2 + eps^2)
        sample_latent=True,  # G samples z ~ q(z|x) in training (the VAE's Gaussian noise)
      )
    )

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    c, key = config.view_synthesis, 'config.view_synthesis'

    def fail(name, why):
      raise ConfigError(f'{key}.{name}={c[name]!r}: {why}')

    for name in ('generator_channels', 'flow_channels'):
      if not c[name] or any(int(w) <= 0 for w in c[name]):
        fail(name, 'must be a non-empty tuple of positive widths')
    if c.latent_dim <= 0:
      fail('latent_dim', 'must be positive')
    if c.temporal_kernel < 1 or c.temporal_kernel % 2 == 0:
      fail('temporal_kernel', 'must be odd and >= 1')
    weights = (
      'photometric_weight',
      'kl_weight',
      'infomax_weight',
      'infomin_weight',
      'reconstruction_weight',
      'smoothness_weight',
    )
    for name in weights:
      if c[name] < 0:
        fail(name, 'must be >= 0')
    if all(c[name] == 0 for name in weights):
      fail('photometric_weight', 'and every other weight are 0: nothing to learn')
    if c.infomin_form not in INFOMIN_FORMS:
      fail('infomin_form', f'must be one of {INFOMIN_FORMS}')
    if c.charbonnier_eps <= 0:
      fail('charbonnier_eps', 'must be positive')
    size = config.data.crop_size
    for name, factor in (
      ('generator_channels', 2 ** len(c.generator_channels)),
      ('flow_channels', 2 ** (len(c.flow_channels) - 1)),
    ):
      if size % factor:
        fail(name, f'needs data.crop_size={size} divisible by {factor}')
    if config.data.num_frames < 2:
      raise ConfigError(
        f'config.data.num_frames={config.data.num_frames}: the flow needs >= 2 frames'
      )
    if config.model.input_mode != 'rgb':
      raise ConfigError(
        f'config.model.input_mode={config.model.input_mode!r}: the info-min feature extractor '
        "must see appearance; set it to 'rgb'"
      )

  @property
  def settings(self) -> ml_collections.ConfigDict:
    return self.config.view_synthesis

  # --- data --------------------------------------------------------------------------------
  def views(self) -> Sequence[ViewSpec]:
    d = self.config.data
    return (ViewSpec(name='clip', num_frames=d.num_frames, stride=d.stride),)

  # --- networks ----------------------------------------------------------------------------
  def generator(self) -> VideoVAE:
    c = self.settings
    return make_generator(
      c.generator_channels,
      c.latent_dim,
      c.temporal_kernel,
      self.config.data,
      jnp.dtype(self.config.model.dtype),
    )

  def flow_net(self) -> FlowNet:
    return FlowNet(
      channels=tuple(int(w) for w in self.settings.flow_channels),
      dtype=jnp.dtype(self.config.model.dtype),
    )

  def init(self, rng, batch):
    g_rng, o_rng, f_rng, z_rng = jax.random.split(rng, 4)
    x = batch['clip']
    generator = self.generator().init({'params': g_rng, 'latent': z_rng}, x)
    flow = self.flow_net().init(o_rng, x)
    # The frozen info-min feature extractor: state, so no optimizer update or decay touches it.
    encoder = self.backbone().init(f_rng, x, train=False)
    params = {'generator': generator['params'], 'flow': flow['params']}
    return params, {'infomin_encoder': dict(encoder)}

  def features(self, encoder_variables: Any, clips: jax.Array) -> jax.Array:
    """f(clips): the frozen extractor with its stored BatchNorm statistics, float32 [B, D]."""
    out = self.backbone().apply(encoder_variables, clips, train=False)
    return out.astype(jnp.float32)

  def synthesize(self, params, clips, rng=None, sample=None):
    """(x_s, latent mean, latent log-variance) of G with `params['generator']`."""
    sample = self.settings.sample_latent if sample is None else sample
    rngs = {'latent': rng} if sample else {}
    return self.generator().apply({'params': params['generator']}, clips, sample=sample, rngs=rngs)

  def flow(self, flow_params, clips):
    return self.flow_net().apply({'params': flow_params}, clips)

  def loss_fn(self, params, state, batch, rng, step):
    del step
    c = self.settings
    eps = c.charbonnier_eps
    x = batch['clip']
    x_s, mean, log_var = self.synthesize(params, x, rng)
    flow_x = self.flow(params['flow'], x)
    photometric = objectives.photometric_loss(x, flow_x, eps)
    # O's parameters are constants in the info-max path: its gradient reaches G only.
    flow_s = self.flow(jax.lax.stop_gradient(params['flow']), x_s)
    infomax = objectives.infomax_flow_loss(flow_s, flow_x, eps)
    # Eq. 14 sums the KL over the latent; per element, so that its scale does not grow with the
    # latent map (8,192 elements at the tiny scale) against per-pixel means of the other terms.
    kl = objectives.vae_kl_loss(mean, log_var) / float(np.prod(mean.shape[1:]))
    encoder = state['infomin_encoder']
    # objectives.infomin_loss = -mean cos(f(sg x), f(x_s)), eq. 16 as written.
    equation = objectives.infomin_loss(self.features(encoder, x), self.features(encoder, x_s))
    cosine = -equation
    infomin = equation if c.infomin_form == 'equation' else cosine
    reconstruction = jnp.mean(objectives.charbonnier(x_s - x, eps))
    smoothness = flow_smoothness(flow_x, eps)
    loss = (
      c.photometric_weight * photometric
      + c.kl_weight * kl
      + c.infomax_weight * infomax
      + c.infomin_weight * infomin
      + c.reconstruction_weight * reconstruction
      + c.smoothness_weight * smoothness
    )
    zero_flow = objectives.photometric_loss(x, jnp.zeros_like(flow_x), eps)
    metrics = dict(
      photometric_loss=photometric,
      kl_loss=kl,
      infomax_loss=infomax,
      infomin_loss=infomin,
      reconstruction_loss=reconstruction,
      smoothness_loss=smoothness,
      # Diagnostics: the photometric loss of the zero flow (what O must beat), the mean flow
      # length, how far x_s is from x (normalised units) and cos(f(x), f(x_s)).
      zero_flow_photometric=zero_flow,
      flow_magnitude=jnp.mean(jnp.linalg.norm(flow_x, axis=-1)),
      synthetic_difference=jnp.mean(jnp.abs(x_s - x)),
      synthetic_cosine=cosine,
    )
    return loss, (metrics, state)

  def backbone_variables(self, params, state):
    """The frozen info-min extractor (random init unless `config.init_from` set it)."""
    del params
    return state['infomin_encoder']

  def set_backbone_variables(self, params, state, variables):
    """`config.init_from` sets the info-min feature extractor (a pretrained f)."""
    variables = {k: jax.tree_util.tree_map(jnp.asarray, v) for k, v in variables.items()}
    return params, dict(state, infomin_encoder={**state['infomin_encoder'], **variables})


# ---------------------------------------------------------------------------------------------
# Loading the generator for rate_order (called from `RateOrder.load_pretrained`).
# ---------------------------------------------------------------------------------------------


def load_generator(
  load_run: base.LoadRun,
  workdir: str,
  *,
  architecture: dict[str, Any],
  data: ml_collections.ConfigDict,
  expected: Any,
  step: int | None = None,
) -> dict[str, Any]:
  """G's variables {'params': ...} (NumPy) of a `view_synthesis` run.

  Args:
    load_run: the loop's run loader (`jaxvssl.runs.load_run`).
    workdir: the view_synthesis run directory.
    architecture: {key: value} of `GENERATOR_KEYS` the caller builds G with.
    data: the caller's data section (G normalises its output with data.mean / data.std).
    expected: the caller's initialised G variables (arrays or ShapeDtypeStructs).
    step: a checkpoint step (None: the latest).
  Raises:
    PretrainedWeightsError naming the path and the problem: no run or checkpoint, a run of
    another method, another architecture or normalisation, variables that differ.
  """
  where = f'view-synthesis run {workdir!r} (config.rate_order.view_synthesis_workdir)'
  run = base.load_stage_run(
    load_run,
    workdir,
    step,
    method='view_synthesis',
    config_file='configs/view_synthesis.py',
    where=where,
  )
  found = {k: _plain(run.config.view_synthesis[k]) for k in GENERATOR_KEYS}
  wanted = {k: _plain(architecture[k]) for k in GENERATOR_KEYS}
  if found != wanted:
    diff = ', '.join(f'{k}: run {found[k]} vs {wanted[k]}' for k in found if found[k] != wanted[k])
    raise PretrainedWeightsError(
      f'{where}: architecture mismatch ({diff}); config.rate_order.generator_channels / '
      "latent_dim / temporal_kernel must equal the stage's view_synthesis settings"
    )
  for key in ('mean', 'std'):
    if _plain(run.config.data[key]) != _plain(data[key]):
      raise PretrainedWeightsError(
        f'{where}: the stage normalised clips with data.{key}={tuple(run.config.data[key])}, '
        f'this run with {tuple(data[key])}'
      )
  variables = {'params': jax.tree_util.tree_map(np.asarray, run.params['generator'])}
  mismatch = base.describe_mismatch(expected, variables)
  if mismatch:
    raise PretrainedWeightsError(
      f'{where}, checkpoint step {run.step}: generator variables do not match: {mismatch}'
    )
  return variables


def _plain(value: Any) -> Any:
  """Config values compared as plain numbers / tuples (lists and tuples alike)."""
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  return float(value) if isinstance(value, (int, float)) else value

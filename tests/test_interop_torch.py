"""jaxvssl.interop.torch: torchvision <-> jaxvssl conversion of R3D-18, R(2+1)D-18 and MViT-B.

Without torch: the conversion is checked against the committed spec of torchvision's key names
and shapes (jaxvssl/interop/torchvision_spec.json). With torchvision (`-m torch`): a randomly
initialised torchvision model with non-trivial BatchNorm statistics and its converted jaxvssl
twin give the same features on the same clip, in eval mode, in both directions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import models
from jaxvssl.errors import PretrainedWeightsError
from jaxvssl.interop import torch as interop_torch

BACKBONES = ('r3d18', 'r2plus1d18', 'mvit_b')
# [B, T, H, W, C]: reduced size for the ResNets, so the comparison takes seconds on a CPU.
# torchvision's MViT has position embeddings for its 8 x 56 x 56 token grid only: 16 x 224 px.
CLIP_SHAPES = {
  'r3d18': (2, 8, 32, 32, 3),
  'r2plus1d18': (2, 8, 32, 32, 3),
  'mvit_b': (1, 16, 224, 224, 3),
}


def _random_variables(backbone: str, seed: int = 0) -> dict:
  """Variables with non-trivial LayerNorm/BN scale and bias and BN running statistics (NumPy).

  The ResNets start from their initialisation; MViT-B (whose full-size init compiles for long)
  from random normal kernels of its shapes.
  """
  module = models.get_backbone(backbone)
  if backbone in ('mvit_b', 'mvit_b_scvrl'):
    variables = jax.eval_shape(
      lambda: module.init(jax.random.PRNGKey(0), jnp.zeros(CLIP_SHAPES['mvit_b']), train=False)
    )
  else:
    variables = jax.jit(lambda r: module.init(r, jnp.zeros((1, 8, 32, 32, 3)), train=False))(
      jax.random.PRNGKey(seed)
    )
  rng = np.random.default_rng(seed)

  def perturb(path, x):
    name = jax.tree_util.keystr(path)
    if "'var'" in name or "'scale'" in name:
      return rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
    if "'mean'" in name or "'bias'" in name:
      return rng.normal(0.0, 0.1, x.shape).astype(np.float32)
    if isinstance(x, jax.ShapeDtypeStruct):
      return rng.normal(0.0, 0.05, x.shape).astype(np.float32)
    return np.asarray(x)

  return jax.tree_util.tree_map_with_path(perturb, variables)


@pytest.mark.parametrize('backbone', BACKBONES)
def test_conversion_matches_the_committed_torchvision_spec(backbone):
  variables = _random_variables(backbone)
  sd = interop_torch.to_torchvision(variables, backbone)
  spec = interop_torch.torchvision_spec()[backbone]
  assert list(sd) == list(spec)  # torchvision's own key order
  assert {k: list(v.shape) for k, v in sd.items()} == spec
  back = interop_torch.from_torchvision(sd, backbone)
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, variables)


def test_from_torchvision_drops_fc_and_a_module_prefix():
  variables = _random_variables('r3d18')
  sd = interop_torch.to_torchvision(variables, 'r3d18')
  sd = {f'module.{k}': v for k, v in sd.items()}
  sd['module.fc.weight'] = np.zeros((400, 512), np.float32)
  back = interop_torch.from_torchvision(sd, 'r3d18')
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, variables)


def test_wrong_backbone_state_dict_fails_naming_the_first_mismatched_key():
  sd = interop_torch.to_torchvision(_random_variables('r2plus1d18'), 'r2plus1d18')
  with pytest.raises(PretrainedWeightsError, match=r"r3d18: key 'stem\.0\.weight' has shape"):
    interop_torch.from_torchvision(sd, 'r3d18')
  sd = interop_torch.to_torchvision(_random_variables('r3d18'), 'r3d18')
  with pytest.raises(PretrainedWeightsError, match=r"r2plus1d18: key 'stem\.0\.weight'"):
    interop_torch.from_torchvision(sd, 'r2plus1d18')
  del sd['layer2.0.downsample.1.running_var']
  with pytest.raises(PretrainedWeightsError, match=r"missing key 'layer2\.0\.downsample\.1\.run"):
    interop_torch.from_torchvision(sd, 'r3d18')


def test_to_torchvision_names_missing_and_unexpected_jaxvssl_variables():
  variables = _random_variables('r3d18')
  del variables['batch_stats']['stage3_block1']
  with pytest.raises(PretrainedWeightsError, match='batch_stats/stage3_block1/conv1'):
    interop_torch.to_torchvision(variables, 'r3d18')
  variables = _random_variables('r3d18')
  variables['params']['extra'] = {'conv': {'kernel': np.zeros((1, 1, 1, 1, 1))}}
  with pytest.raises(PretrainedWeightsError, match='unexpected jaxvssl variable params/extra'):
    interop_torch.to_torchvision(variables, 'r3d18')


def test_backbones_without_a_mapping_raise_a_clear_error():
  with pytest.raises(PretrainedWeightsError, match="'c3d' has no torchvision counterpart"):
    interop_torch.from_torchvision({}, 'c3d')


def test_scvrl_mvit_converts_all_but_the_cube_embedding():
  """mvit_b_scvrl = mvit_v1_b with a 2x7x7 cube embedding: every other tensor converts; the
  embedding's kernel is left out both ways (and a full mvit_v1_b state dict is accepted)."""
  module = models.get_backbone('mvit_b_scvrl')
  shapes = jax.eval_shape(
    lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 224, 224, 3)), train=False)
  )
  rng = np.random.default_rng(0)
  variables = jax.tree_util.tree_map(lambda x: rng.normal(size=x.shape).astype(np.float32), shapes)
  assert interop_torch.not_converted('mvit_b_scvrl') == ('conv_proj.weight',)
  sd = interop_torch.to_torchvision(variables, 'mvit_b_scvrl')
  spec = interop_torch.torchvision_spec()['mvit_b']
  assert list(sd) == [k for k in spec if k != 'conv_proj.weight']
  back = interop_torch.from_torchvision(sd, 'mvit_b_scvrl')
  assert 'kernel' not in back['params']['patch_embed']
  expected = jax.tree_util.tree_map(np.asarray, variables)
  del expected['params']['patch_embed']['kernel']
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, expected)
  # A full torchvision mvit_v1_b state dict (3x7x7 embedding) gives the same variables.
  full = dict(sd, **{'conv_proj.weight': np.zeros(spec['conv_proj.weight'], np.float32)})
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, interop_torch.from_torchvision(full, 'mvit_b_scvrl'), expected
  )
  del sd['blocks.0.norm1.weight']
  with pytest.raises(
    PretrainedWeightsError, match=r"mvit_b: missing key 'blocks\.0\.norm1\.weight'"
  ):
    interop_torch.from_torchvision(sd, 'mvit_b_scvrl')


# --- against torchvision itself --------------------------------------------------------------


def _torchvision_model(backbone: str, seed: int):
  torch = pytest.importorskip('torch')
  video = pytest.importorskip('torchvision.models.video')
  torch.manual_seed(seed)
  model = getattr(video, interop_torch.TORCHVISION_NAMES[backbone])()
  # The jaxvssl backbone ends at the pooled feature (MViT: the final-LayerNorm CLS token).
  setattr(model, 'head' if backbone == 'mvit_b' else 'fc', torch.nn.Identity())
  return model


def _torch_features(model, clip: np.ndarray) -> np.ndarray:
  import torch  # pylint: disable=g-import-not-at-top

  model.eval()
  with torch.no_grad():  # NDHWC -> NCDHW
    return model(torch.from_numpy(clip.transpose(0, 4, 1, 2, 3).copy())).numpy()


def _jax_features(backbone: str, variables: dict, clip: np.ndarray) -> np.ndarray:
  module = models.get_backbone(backbone)
  return np.asarray(module.apply(variables, jnp.asarray(clip), train=False))


def _assert_close(a: np.ndarray, b: np.ndarray) -> None:
  # 1e-4 relative to the feature scale (float32, different conv algorithms on each side).
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()))


@pytest.mark.torch
@pytest.mark.parametrize('backbone', BACKBONES)
def test_torchvision_to_jaxvssl_gives_the_same_features(backbone):
  torch = pytest.importorskip('torch')
  model = _torchvision_model(backbone, seed=1)
  g = torch.Generator().manual_seed(2)
  with torch.no_grad():  # non-trivial BN: eval mode must use these, not the batch's
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm3d):
        m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
      if isinstance(m, (torch.nn.BatchNorm3d, torch.nn.LayerNorm)):
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
        m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    if backbone == 'mvit_b':  # torchvision initialises them to zeros
      for p in (model.pos_encoding.spatial_pos, model.pos_encoding.temporal_pos):
        p.copy_(torch.randn(p.shape, generator=g) * 0.1)
  clip = np.random.default_rng(3).normal(size=CLIP_SHAPES[backbone]).astype(np.float32)
  variables = interop_torch.from_torchvision(model.state_dict(), backbone)
  _assert_close(_jax_features(backbone, variables, clip), _torch_features(model, clip))


@pytest.mark.torch
@pytest.mark.parametrize('backbone', BACKBONES)
def test_jaxvssl_to_torchvision_gives_the_same_features(backbone):
  model = _torchvision_model(backbone, seed=0)
  variables = _random_variables(backbone, seed=4)
  model.load_state_dict(interop_torch.to_torchvision(variables, backbone, as_torch=True))
  clip = np.random.default_rng(5).normal(size=CLIP_SHAPES[backbone]).astype(np.float32)
  _assert_close(_torch_features(model, clip), _jax_features(backbone, variables, clip))


@pytest.mark.torch
def test_scvrl_mvit_partial_export_in_torchvision():
  """The mvit_b_scvrl export loads into mvit_v1_b with strict=False, which reports exactly the
  cube embedding's kernel missing. Given SCVRL's 2x7x7 embedding (a Conv3d holding the jaxvssl
  kernel) in place of conv_proj, the torchvision model gives the jaxvssl features: every other
  tensor converted right."""
  torch = pytest.importorskip('torch')
  model = _torchvision_model('mvit_b', seed=0)
  variables = _random_variables('mvit_b_scvrl', seed=6)
  sd = interop_torch.to_torchvision(variables, 'mvit_b_scvrl', as_torch=True)
  result = model.load_state_dict(sd, strict=False)
  assert list(result.missing_keys) == list(interop_torch.not_converted('mvit_b_scvrl'))
  assert list(result.unexpected_keys) == []
  kernel = np.asarray(variables['params']['patch_embed']['kernel'])  # DHWIO [2, 7, 7, 3, 96]
  conv = torch.nn.Conv3d(3, kernel.shape[-1], (2, 7, 7), stride=(2, 4, 4), padding=(0, 3, 3))
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(kernel.transpose(4, 3, 0, 1, 2).copy()))  # OIDHW
    conv.bias.copy_(model.conv_proj.bias)  # the converted bias
  model.conv_proj = conv
  clip = np.random.default_rng(7).normal(size=CLIP_SHAPES['mvit_b']).astype(np.float32)
  _assert_close(_torch_features(model, clip), _jax_features('mvit_b_scvrl', variables, clip))

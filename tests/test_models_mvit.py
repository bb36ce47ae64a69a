"""Tests of jaxvssl.models.mvit: MViT-B facts, SCVRL's patch embedding, position embeddings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl.models import get_backbone
from tests.test_models import CLIP, abstract_init, num_params, numpy_variables


def test_mvit_b_facts_and_parameter_count():
  specs = get_backbone('mvit_b').schedule()
  assert len(specs) == 16
  assert [s.stage for s in specs] == [1] + [2] * 2 + [3] * 11 + [4] * 2
  assert [s.dim for s in specs] == [96] + [192] * 2 + [384] * 11 + [768] * 2
  assert [s.num_heads for s in specs] == [1] + [2] * 2 + [4] * 11 + [8] * 2
  assert [i for i, s in enumerate(specs) if s.q_stride == (1, 2, 2)] == [1, 3, 14]
  assert [s.kv_stride for s in specs[:5]] == [(1, 8, 8), (1, 4, 4), (1, 4, 4), (1, 2, 2), (1, 2, 2)]
  assert specs[-1].kv_stride == (1, 1, 1)
  assert specs[0].drop_path == 0.0 and specs[-1].drop_path == pytest.approx(0.2)
  variables = abstract_init(get_backbone('mvit_b'), jnp.zeros((1, 16, 224, 224, 3)), train=False)
  p = variables['params']
  assert p['patch_embed']['kernel'].shape == (3, 7, 7, 3, 96)
  assert p['pos_embed_spatial'].shape == (56, 56, 96) and p['pos_embed_temporal'].shape == (8, 96)
  # MViT-B 16x4: 36.6M with the 400-way classifier (768*400+400 = 307,600).
  assert num_params(variables) + 307_600 == pytest.approx(36.6e6, rel=2e-3)
  scvrl_variables = abstract_init(
    get_backbone('mvit_b_scvrl'), jnp.zeros((1, 16, 224, 224, 3)), train=False
  )
  scvrl = scvrl_variables['params']
  assert scvrl['patch_embed']['kernel'].shape == (2, 7, 7, 3, 96)
  # SCVRL's backbone: the kt=2 cube embedding has 7*7*3*96 = 14,112 weights fewer.
  assert num_params(variables) - num_params(scvrl_variables) == 14_112
  assert num_params(scvrl_variables) + 307_600 == pytest.approx(36.6e6, rel=2e-3)
  assert scvrl['pos_embed_temporal'].shape == (8, 96)


def test_mvit_scvrl_tokens_see_disjoint_frame_pairs():
  model = get_backbone('mvit_tiny')
  clip = np.random.default_rng(2).normal(size=(1, 8, 16, 16, 3)).astype(np.float32)
  moved = clip.copy()
  moved[:, 2] += 1.0  # frame 2 belongs to the second pair (frames 2, 3)
  x = jnp.asarray(np.concatenate([clip, moved]))
  variables = numpy_variables(model, x, train=False)
  _, stages = jax.jit(lambda v, x: model.apply(v, x, train=False, return_stages=True))(variables, x)
  diff = np.abs(np.asarray(stages['stem'][0] - stages['stem'][1])).max(axis=(1, 2, 3))
  assert diff[1] > 1e-2 and np.all(diff[[0, 2, 3]] < 1e-5), diff  # (batched-conv rounding)


def test_mvit_position_embeddings_resize_to_other_grids():
  model = get_backbone('mvit_tiny')
  variables = abstract_init(model, jnp.zeros(CLIP), train=False)
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 16, 48, 48, 3))), variables)
  assert out.shape == (2, 128)

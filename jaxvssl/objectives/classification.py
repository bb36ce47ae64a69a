"""Pretext classification / regression losses: order, shuffle degree, sampling rate.

Used by CACL ("Cross-Architecture Self-supervised Video Representation Learning", Guo et al.,
CVPR 2022: shuffle-degree prediction with `softmax_cross_entropy`) and by rate_order (IEEE TCSVT
2021, DOI 10.1109/TCSVT.2021.3114209: order prediction with `softmax_cross_entropy`, sampling-rate
prediction with `rate_regression_loss` / `rate_classification_loss`; method `rate_order`).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import as_f32


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Cross entropy with integer labels, float32 and logsumexp-stable.

  Used for segment-order prediction (rate_order, TCSVT 2021 eq. 4; n! classes) and shuffle-degree
  prediction (CACL, Guo et al. CVPR 2022 eq. 6; 16 classes).

  Args:
    logits: [..., C].
    labels: int [...] in [0, C).
  Returns:
    float32 [...] per-example losses.
  """
  log_p = jax.nn.log_softmax(as_f32(logits), axis=-1)
  return -jnp.take_along_axis(log_p, labels.astype(jnp.int32)[..., None], axis=-1)[..., 0]


def rate_regression_loss(
  predictions: jax.Array, rates: jax.Array, mask: Optional[jax.Array] = None
) -> jax.Array:
  """Mean squared error of predicted per-segment sampling rates (rate_order, TCSVT 2021 eq. 5-7).

  Args:
    predictions: [B, n] regressed rates, one per segment in INPUT order.
    rates: [B, n] true rates (any numeric dtype), in the same order.
    mask: optional [B, n] bool/0-1 weights for valid segments (padding when n varies).
  Returns:
    float32 scalar: mean over the valid entries.
  """
  err = (as_f32(predictions) - as_f32(rates)) ** 2
  if mask is None:
    return jnp.mean(err)
  m = as_f32(mask)
  return jnp.sum(err * m) / jnp.maximum(jnp.sum(m), 1.0)


def rate_classification_loss(
  logits: jax.Array, rates: jax.Array, min_rate: int = 1, mask: Optional[jax.Array] = None
) -> jax.Array:
  """Classification variant of rate prediction (rate_order, TCSVT 2021 Table V ablation).

  Class of a segment = rate - min_rate (rates are integers in [min_rate, min_rate + R - 1]).

  Args:
    logits: [B, n, R] per-segment logits over the R possible rates.
    rates: int [B, n] true rates, in input order.
    min_rate: smallest rate of the configured range (1).
    mask: optional [B, n] weights for valid segments.
  Returns:
    float32 scalar: mean cross entropy over the valid segments.
  """
  ce = softmax_cross_entropy(logits, rates.astype(jnp.int32) - min_rate)
  if mask is None:
    return jnp.mean(ce)
  m = as_f32(mask)
  return jnp.sum(ce * m) / jnp.maximum(jnp.sum(m), 1.0)

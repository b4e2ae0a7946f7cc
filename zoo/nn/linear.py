"""Position-wise layers that declare their per-sample gradients.

`Dense` (our layout, with a feature-major face for cached passes), and
Haiku's `hk.Linear` and `hk.LayerNorm` with the same parameters, each
with the `gradient_rule` of `zoo.nn.gradient_rules`: its weights apply at
every position of its input, so a sample's gradient sums input x
cotangent over the positions.

Glossary of shapes:
  B: batch, I / O: input / output features.
"""

from __future__ import annotations

from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.nn import gradient_rules
from zoo.nn import initializers


class Dense(hk.Module):
  """y = W x + b, batch-major (`__call__`, [..., I]) or feature-major
  (`feature_major`, [I, B]) with the same parameters: w [O, I], b [O]."""

  def __init__(self, features: int, *, use_bias: bool = True,
               param_dtype: Any = jnp.float64,
               precision: jax.lax.Precision | None = None,
               kernel_init: initializers.Initializer | None = None,
               name: str | None = None):
    super().__init__(name=name)
    self.features = checks.positive_int("features", features)
    self.use_bias = use_bias
    self.param_dtype = param_dtype
    self.precision = precision
    self.kernel_init = kernel_init

  def _params(self, in_features: int):
    init = initializers.unmasked(self.kernel_init or initializers.lecun_normal(
        in_axis=-1, out_axis=-2))
    w = hk.get_parameter("w", (self.features, in_features), self.param_dtype,
                         init=init)
    b = hk.get_parameter("b", (self.features,), self.param_dtype,
                         init=jnp.zeros) if self.use_bias else None
    return w, b

  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., I] -> [..., O]."""
    w, b = self._params(x.shape[-1])
    y = jnp.einsum("...i,oi->...o", x.astype(w.dtype), w,
                   precision=self.precision)
    return y if b is None else y + b

  def feature_major(self, x: jax.Array) -> jax.Array:
    """[I, B] -> [O, B]."""
    w, b = self._params(x.shape[0])
    y = jnp.dot(w, x.astype(w.dtype), precision=self.precision)
    return y if b is None else y + b[:, None]

  def gradient_rule(self) -> gradient_rules.GradientRule:
    """Its weights apply at every position of `__call__`'s input
    (`zoo.nn.gradient_rules`)."""
    return gradient_rules.linear_rule("w", "b" if self.use_bias else None,
                                      out_first=True)


class Linear(hk.Linear):
  """`hk.Linear` (w [I, O], b [O]) with its `gradient_rule`, and a
  feature-major face for few outputs."""

  def feature_major(self, x: jax.Array) -> jax.Array:
    """The same map of feature-major input: [..., I, B] -> [..., O, B], as
    products summed over I. For the few outputs of a readout (K local
    states) a matrix product is mostly call overhead on CPU, or a transpose
    of the input to batch-major; this is one fused loop. The parameters are
    `__call__`'s (created the same way, in x's dtype)."""
    input_size = x.shape[-2]
    w_init = self.w_init or hk.initializers.TruncatedNormal(
        stddev=1. / np.sqrt(input_size))
    w = hk.get_parameter("w", [input_size, self.output_size], x.dtype,
                         init=w_init)
    out = jnp.sum(w[:, :, None] * x[..., :, None, :], axis=-3)  # [..., O, B]
    if self.with_bias:
      b = hk.get_parameter("b", [self.output_size], x.dtype,
                           init=self.b_init)
      out = out + b[:, None]
    return out

  def gradient_rule(self) -> gradient_rules.GradientRule:
    return gradient_rules.linear_rule("w", "b" if self.with_bias else None,
                                      out_first=False)


class LayerNorm(hk.LayerNorm):
  """`hk.LayerNorm` over the last axis, with its `gradient_rule`: y = scale
  n + offset with n the normalized input, so dL/dscale = sum_p c_p conj(n_p)
  and dL/doffset = sum_p c_p."""

  def __init__(self, *, name: str | None = None):
    super().__init__(axis=-1, create_scale=True, create_offset=True,
                     name=name)

  def gradient_rule(self) -> gradient_rules.GradientRule:
    eps = self.eps

    def sample_gradients(x, c, shapes):
      del shapes
      mean = jnp.mean(x, axis=-1, keepdims=True)
      variance = jnp.var(x, axis=-1, keepdims=True)
      normed = jax.lax.rsqrt(variance + eps) * (x - mean)
      return {"scale": gradient_rules.shared_bias(c * jnp.conj(normed)),
              "offset": gradient_rules.shared_bias(c)}

    return gradient_rules.GradientRule(sample_gradients)

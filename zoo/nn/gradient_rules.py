"""Each sample's parameter gradients from a layer's inputs and its outputs'
cotangents.

A layer that applies a weight as a linear map, y = W x (+ b), at one
position or at many (the sites of a convolution, the steps of a recurrent
scan, the positions of a sequence: shared weights), gives a scalar L the
gradient

  dL / dW = sum_p c_p conj(x_p)^T,     dL / db = sum_p c_p,

over the positions p where it is applied, with c_p = dL/dRe(y_p) +
i dL/dIm(y_p) the cotangent at that position's output (the conjugate of
JAX's vjp for complex y). So one reverse pass over a whole batch, taken
with respect to a zero shift added at each layer's outputs (the samples
are independent, so the batch's cotangents are every sample's), and the
layers' inputs recorded on the way give every sample's gradient with no
reverse pass per sample (per-example gradients: Goodfellow 2015,
arXiv:1510.01799). `zoo.models.Wavefunction.layer_probe` runs that pass,
`zoo.vmc.sr.probed_jacobian` builds SR's jacobian from it.

The protocol. A layer offers it by two things:

  gradient_rule() -> GradientRule     how its parameters' per-sample
                                      gradients follow from what the probe
                                      recorded
  probed(shift, *args, **kwargs)      optional: (output, inputs, point) of
                                      its full pass (`__call__`) with
                                      `shift` (or None) added at `point`,
                                      the linear outputs the rule reads;
                                      `inputs` a pytree, batch first

A layer without `probed` is probed at its output: the shift is added to
what `__call__` returns and its first argument is recorded. A layer whose
linear maps sit inside its full pass (a recurrent cell's gates inside its
scan) defines `probed` to put the shift there. The probe asks every module
it meets whether it has `gradient_rule`; no table of layer types.

Glossary of shapes:
  B: batch (rows of the jacobian), P: positions where a weight applies,
  I / O: input / output features.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class GradientRule(NamedTuple):
  """A layer's per-sample parameter gradients from its inputs and output
  cotangents.

  Attributes:
    sample_gradients: (inputs, c, param shapes) -> {param name: [B, *its
      shape]}: each row's gradient of a scalar L, from the recorded inputs
      (a pytree, batch first) and L's cotangent c at the probe point
      ([B, ...], batch first), for every parameter of the layer. Linear in
      c: with c = dL/dRe(y) + i dL/dIm(y) they are dL/dRe + i dL/dIm of
      each parameter, as `zoo.vmc.estimators` packs gradients. A pure
      function, callable outside a transform.
    dense: (exclusive, use_bias) of a `zoo.nn.MaskedDense1D`, whose Gram
      matrices `MaskedDense1D.gradient_gram` forms without the gradients;
      else None.
  """
  sample_gradients: Callable[..., dict[str, jax.Array]]
  dense: tuple[bool, bool] | None = None


def shared_linear(x: jax.Array, c: jax.Array, *, out_first: bool
                  ) -> jax.Array:
  """sum_p outer(c_p, conj x_p) per row: x [B, ..., I], c [B, ..., O] ->
  [B, O, I] (out_first, W of shape [O, I]) or [B, I, O]."""
  x = x.reshape(x.shape[0], -1, x.shape[-1])
  c = c.reshape(c.shape[0], -1, c.shape[-1])
  spec = "bpo,bpi->boi" if out_first else "bpo,bpi->bio"
  return jnp.einsum(spec, c, jnp.conj(x),
                    precision=jax.lax.Precision.HIGHEST)


def shared_bias(c: jax.Array) -> jax.Array:
  """sum_p c_p per row: [B, ..., O] -> [B, O]."""
  return jnp.sum(c.reshape(c.shape[0], -1, c.shape[-1]), axis=1)


def linear_rule(weight: str, bias: str | None, *, out_first: bool
                ) -> GradientRule:
  """The rule of y = W x + b applied at every position of its input
  (module doc): parameters named `weight` (and `bias`, or None), W of shape
  [O, I] (out_first) or [I, O]."""

  def sample_gradients(x, c, shapes):
    del shapes
    grads = {weight: shared_linear(x, c, out_first=out_first)}
    if bias is not None:
      grads[bias] = shared_bias(c)
    return grads

  return GradientRule(sample_gradients)

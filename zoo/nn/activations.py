"""Activations that act on real and imaginary parts separately."""

import jax
import jax.numpy as jnp

# SELU constants (Klambauer et al. 2017), as in jax.nn.selu.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
  """scale * (x if x > 0 else alpha * (exp(x) - 1)), as jax.nn.selu.

  exp(x) - 1 instead of expm1(x): XLA on CPU evaluates exp about twice as
  fast (BENCHMARKS.md, "Tuned constants"), and the
  difference is below one unit in the last place of 1 (absolute). The
  exponent is zeroed where x > 0 so the unused branch (and its gradient)
  stays finite; at x = 0 the gradient is scale * alpha, as in jax.nn.selu.
  """
  positive = x > 0
  negative = (_SELU_SCALE * _SELU_ALPHA) * (jnp.exp(jnp.where(positive, 0, x)) - 1)
  return jnp.where(positive, _SELU_SCALE * x, negative.astype(x.dtype))


def reim(f):
  """Lifts a real activation f to complex inputs as f(Re z) + i f(Im z)."""

  def activation(z):
    if jnp.iscomplexobj(z):
      return jax.lax.complex(f(z.real), f(z.imag))
    return f(z)

  activation.__name__ = f"reim_{getattr(f, '__name__', 'f')}"
  return activation


def reim_scaled(f):
  """As `reim`, but f(sqrt2 Re z) / sqrt2 + i f(sqrt2 Im z) / sqrt2 on
  complex inputs (NetKet 3.23's `reim`), so that a model converted from
  NetKet (`zoo.netket`) computes what it did there."""
  sqrt2 = 2.0 ** 0.5

  def activation(z):
    if jnp.iscomplexobj(z):
      return jax.lax.complex(f(sqrt2 * z.real), f(sqrt2 * z.imag)) / sqrt2
    return f(z)

  activation.__name__ = f"reim_scaled_{getattr(f, '__name__', 'f')}"
  return activation


reim_selu = reim(selu)
reim_relu = reim(jax.nn.relu)
reim_tanh = reim(jnp.tanh)

ACTIVATIONS = {
    "selu": reim_selu,
    "relu": reim_relu,
    "tanh": reim_tanh,
    "selu_netket": reim_scaled(selu),  # NetKet's reim_selu
}

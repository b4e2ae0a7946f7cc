"""Activations that act on real and imaginary parts separately."""

import jax
import jax.numpy as jnp


def reim(f):
  """Lifts a real activation f to complex inputs as f(Re z) + i f(Im z)."""

  def activation(z):
    if jnp.iscomplexobj(z):
      return jax.lax.complex(f(z.real), f(z.imag))
    return f(z)

  activation.__name__ = f"reim_{getattr(f, '__name__', 'f')}"
  return activation


reim_selu = reim(jax.nn.selu)
reim_relu = reim(jax.nn.relu)
reim_tanh = reim(jnp.tanh)

ACTIVATIONS = {
    "selu": reim_selu,
    "relu": reim_relu,
    "tanh": reim_tanh,
}

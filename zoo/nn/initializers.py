"""Initializers for masked kernels.

Kernels are stored at their full shape with masked entries held at zero, so
that a params tree is the same for the full-pass and the cached layers.
"""

from __future__ import annotations

from typing import Any, Callable

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

# A JAX-style initializer: (key, shape, dtype) -> array.
Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]


def lecun_normal(in_axis=-2, out_axis=-1) -> Initializer:
  """LeCun normal (truncated), variance 1 / fan_in; complex dtypes supported."""
  return jax.nn.initializers.lecun_normal(in_axis=in_axis, out_axis=out_axis)


def zeros(key, shape, dtype=jnp.float64):
  del key
  return jnp.zeros(shape, dtype)


def masked(init: Initializer, mask: np.ndarray) -> hk.initializers.Initializer:
  """Wraps `init` for `hk.get_parameter`: zeroes masked entries, rescaled.

  The factor sqrt(mask.size / mask.sum()) restores, on average over outputs,
  the variance the unmasked entries would get if fan_in counted only them.

  Args:
    init: a JAX-style initializer.
    mask: 0/1 array broadcastable to the kernel shape.
  """
  n_open = float(np.sum(mask))
  scale = np.sqrt(mask.size / n_open) if n_open > 0 else 1.0

  def haiku_init(shape, dtype):
    w = init(hk.next_rng_key(), shape, dtype)
    return (w * jnp.asarray(mask, dtype) * scale).astype(dtype)

  # The entries that stay zero, for whoever asks which parameters are live
  # (`zoo.Wavefunction.live_parameters`).
  haiku_init.mask = np.asarray(mask, bool)
  return haiku_init


def unmasked(init: Initializer) -> hk.initializers.Initializer:
  """Adapts a JAX-style initializer to `hk.get_parameter`'s (shape, dtype)."""
  return lambda shape, dtype: init(hk.next_rng_key(), shape, dtype)

"""Splitting a batch into equal chunks, for `lax.map` / `lax.scan` over them.

Glossary of shapes: B = batch, C = chunk size.
"""

import jax
import jax.numpy as jnp


def split_chunks(a: jax.Array, chunk_size: int, fill) -> jax.Array:
  """[B, ...] -> [B // C rounded up, C, ...], the last chunk padded.

  `fill` is "first" to pad with copies of a[0] (a valid configuration, where
  zeros may be none) or a number to pad with.
  """
  batch = a.shape[0]
  n_chunks = -(-batch // chunk_size)
  pad = n_chunks * chunk_size - batch
  if fill == "first":
    padding = jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])
  else:
    padding = jnp.full((pad,) + a.shape[1:], fill, a.dtype)
  return jnp.concatenate([a, padding]).reshape(n_chunks, chunk_size,
                                               *a.shape[1:])

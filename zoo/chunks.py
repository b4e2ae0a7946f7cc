"""Splitting a batch into equal chunks and mapping a function over them.

`map_chunks` is the one loop over chunks: split, `lax.map` one chunk after
another, merge and cut the padding. The chunks run in turn, each as the
function would on its own (not vmapped), so a result does not depend on
the chunk size through the batching of its operations.

Glossary of shapes: B = batch, C = chunk size.
"""

from typing import Callable

import jax
import jax.numpy as jnp


def split_chunks(a: jax.Array, chunk_size: int, fill) -> jax.Array:
  """[B, ...] -> [n, C', ...]: n = B / C chunks (rounded up) of C' = B / n
  samples (rounded up, at most C), the last chunk padded. Chunks as even
  as n allows pad the fewest samples (256 in chunks of at most 112: three
  of 86, not of 112).

  `fill` is "first" to pad with copies of a[0] (a valid configuration, where
  zeros may be none) or a number to pad with.
  """
  batch = a.shape[0]
  n_chunks = -(-batch // chunk_size)
  chunk_size = -(-batch // n_chunks)
  pad = n_chunks * chunk_size - batch
  if fill == "first":
    padding = jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])
  else:
    padding = jnp.full((pad,) + a.shape[1:], fill, a.dtype)
  return jnp.concatenate([a, padding]).reshape(n_chunks, chunk_size,
                                               *a.shape[1:])


def map_chunks(fn: Callable, x: jax.Array, chunk_size: int | None, *,
               axis: int = 0):
  """fn over x [B, ...] in chunks of at most `chunk_size` samples.

  fn(x_chunk [C, ...]) returns a pytree whose leaves hold the chunk's
  samples on `axis` ([C, ...] for axis 0, [K, C, ...] for axis 1). The
  last chunk is padded with copies of x[0] (a valid configuration) and the
  padding cut from the merged leaves, so they hold B samples on `axis`.
  chunk_size None or >= B: fn(x) at once.
  """
  batch = x.shape[0]
  if chunk_size is None or chunk_size >= batch:
    return fn(x)
  out = jax.lax.map(fn, split_chunks(x, chunk_size, "first"))

  def merge(a):  # [chunks, ..., C, ...] -> [..., B, ...]
    a = jnp.moveaxis(a, 0, axis)  # [..., chunks, C, ...]
    a = a.reshape(*a.shape[:axis], -1, *a.shape[axis + 2:])
    return jax.lax.slice_in_dim(a, 0, batch, axis=axis)

  return jax.tree.map(merge, out)

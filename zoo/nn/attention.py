"""Causal self-attention with a KV cache.

`CausalSelfAttention` has the two faces of the masked layers: the full pass
over a sequence, where position t attends to positions <= t, and a cached
one-position pass, `cached_step`, that writes the keys and values of the
new position into Haiku state (the KV cache) and attends over the cache,
so that a sampling step costs O(T F) for the attention and O(F^2) for the
projections instead of a pass over every earlier position (Vaswani et al.
2017, arXiv:1706.03762; decoding with cached keys and values as in
Ramachandran et al. 2017, arXiv:1704.06001). Written out rather than with
hk.MultiHeadAttention because the cache needs the key and value
projections of one position at a time, batch last (see `zoo.nn.masked`).

Glossary of shapes:
  B: batch, T: sequence positions (sites), F: features, H: heads,
  D: features per head (F = H D), I / O: input / output features.
"""

from __future__ import annotations

import math
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.nn import initializers
from zoo.nn.linear import Dense


class CausalSelfAttention(hk.Module):
  """Multi-head self-attention where position t sees positions <= t.

  Params: query, key, value and output `Dense` layers (F -> F each).
  """

  def __init__(self, features: int, heads: int, *,
               param_dtype: Any = jnp.float64,
               precision: jax.lax.Precision | None = None,
               kernel_init: initializers.Initializer | None = None,
               name: str | None = None):
    super().__init__(name=name)
    self.features = checks.positive_int("features", features)
    self.heads = checks.positive_int("heads", heads)
    if self.features % self.heads:
      raise checks.FieldError("heads", heads,
                              f"must divide features={features}")
    self.head_size = self.features // self.heads
    dense = dict(param_dtype=param_dtype, precision=precision,
                 kernel_init=kernel_init)
    self.query = Dense(features, name="query", **dense)
    self.key = Dense(features, name="key", **dense)
    self.value = Dense(features, name="value", **dense)
    self.output = Dense(features, name="output", **dense)
    self.precision = precision

  def _split(self, y: jax.Array) -> jax.Array:  # [..., F] -> [..., H, D]
    return y.reshape(*y.shape[:-1], self.heads, self.head_size)

  def keys_values(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The keys and values of h [..., T, F]: [..., T, H, D] each."""
    return self._split(self.key(h)), self._split(self.value(h))

  def __call__(self, h: jax.Array,
               before: tuple[jax.Array, jax.Array] | None = None
               ) -> jax.Array:
    """Full pass: [..., T, F] -> [..., T, F].

    before: the keys and values [..., S, H, D] (`keys_values`,
    broadcastable to h's leading axes) of S positions before h's, which h
    continues: h holds positions S .. S + T - 1 of a longer sequence.
    """
    q = self._split(self.query(h))
    k, v = self.keys_values(h)
    if before is not None:
      lead = k.shape[:-3]
      k, v = (jnp.concatenate(
          [jnp.broadcast_to(b, lead + b.shape[-3:]), own], axis=-3)
              for b, own in zip(before, (k, v)))
    length, seen = q.shape[-3], k.shape[-3]
    scores = jnp.einsum("...thd,...shd->...hts", q, k,
                        precision=self.precision)
    scores = scores / math.sqrt(self.head_size)
    causal = (np.arange(seen)[None, :]
              <= seen - length + np.arange(length)[:, None])
    scores = jnp.where(causal, scores, -jnp.inf)
    weights = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("...hts,...shd->...thd", weights, v,
                     precision=self.precision)
    return self.output(out.reshape(*out.shape[:-2], self.features))

  def init_cache(self, batch_size: int, length: int) -> None:
    # Keys and values of every position, [T, H, D, B]; position t is written
    # at step t and masked before it.
    shape = (length, self.heads, self.head_size, batch_size)
    dtype = self.query.param_dtype
    hk.set_state("keys", jnp.zeros(shape, dtype))
    hk.set_state("values", jnp.zeros(shape, dtype))

  def cached_step(self, h: jax.Array, t: jax.Array) -> jax.Array:
    """Cached pass: h [F, B] at position t -> [F, B]; positions < t are in
    the cache."""
    batch = h.shape[-1]
    split = lambda y: y.reshape(self.heads, self.head_size, batch)
    q, k, v = (split(f.feature_major(h))
               for f in (self.query, self.key, self.value))
    keys = jax.lax.dynamic_update_index_in_dim(hk.get_state("keys"), k, t, 0)
    values = jax.lax.dynamic_update_index_in_dim(hk.get_state("values"), v,
                                                 t, 0)
    hk.set_state("keys", keys)
    hk.set_state("values", values)
    out = _attend(q / math.sqrt(self.head_size), keys, values, t)
    return self.output.feature_major(out.reshape(self.features, batch))


def _attend(q: jax.Array, keys: jax.Array, values: jax.Array,
            t: jax.Array) -> jax.Array:
  """softmax_s(q . k_s) weighted values over s = 0 .. t, [H, D, B].

  One pass over the positions with a running maximum, normalizer and sum
  (the online softmax of Milakov & Gimelshein 2018, arXiv:1805.02867), so
  the work is O(t) and every operation is element-wise with the batch
  last: XLA on CPU runs reductions over a middle or leading axis of
  [T, H, D, B] tens of times slower (BENCHMARKS.md, "Tuned constants").
  """
  heads, size, batch = q.shape

  def visit(s, carry):
    top, norm, acc = carry  # [H, B], [H, B], [H, D, B]
    k, v = keys[s], values[s]  # [H, D, B]
    score = q[:, 0] * k[:, 0]
    for d in range(1, size):  # the head's features: a few element-wise FMAs
      score = score + q[:, d] * k[:, d]
    new_top = jnp.maximum(top, score)
    scale, weight = jnp.exp(top - new_top), jnp.exp(score - new_top)
    return (new_top, norm * scale + weight,
            acc * scale[:, None] + weight[:, None] * v)

  start = (jnp.full((heads, batch), -jnp.inf, q.dtype),
           jnp.zeros((heads, batch), q.dtype),
           jnp.zeros((heads, size, batch), q.dtype))
  _, norm, acc = jax.lax.fori_loop(0, t + 1, visit, start)
  return acc / norm[:, None]

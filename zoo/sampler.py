"""Exact autoregressive sampling: site by site, no Markov chain.

For each site i the model gives p(s_i | s_<i) = |psi_i|^machine_pow and one
uniform number per sample picks s_i by inverse CDF. The loop over sites is a
single `lax.scan` whose carry holds the configurations, the running log
probability and the Haiku state cache of the fast models (slow models do a
full pass per site and carry an empty cache).

The uniforms of sample j come from `fold_in(key, j)`, so a sample depends only
on the key and its index: the same key gives the same samples whatever the
chunk size.

Glossary of shapes:
  n: samples, B: samples in one chunk, N: sites, K: local states.
"""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np

from zoo.models import Wavefunction


def _check_count(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def sample(model: Wavefunction, params, key: jax.Array, n_samples: int, *,
           chunk_size: int | None = None, return_log_prob: bool = False):
  """Draws `n_samples` independent configurations from |psi|^machine_pow.

  Args:
    model: a `Wavefunction` (slow or fast).
    params: its parameters.
    key: a JAX random key.
    n_samples: number of samples n.
    chunk_size: samples drawn at once; bounds the memory of the cache and the
      activations. None draws all at once.
    return_log_prob: also return log p(x) = machine_pow * Re log psi(x).

  Returns:
    samples [n, N] of local-state values (the model's real dtype), and
    log_prob [n] if asked for.
  """
  if not isinstance(model, Wavefunction):
    raise ValueError(f"model must be a zoo Wavefunction, got {type(model).__name__}")
  n_samples = _check_count("n_samples", n_samples)
  chunk = n_samples if chunk_size is None else min(
      _check_count("chunk_size", chunk_size), n_samples)
  n_chunks = math.ceil(n_samples / chunk)
  samples, log_prob = _sample_chunks(model, params, key, n_chunks, chunk)
  samples, log_prob = samples[:n_samples], log_prob[:n_samples]
  chex.assert_shape(samples, (n_samples, model.hilbert.size))
  return (samples, log_prob) if return_log_prob else samples


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _sample_chunks(model: Wavefunction, params, key, n_chunks: int, chunk: int):
  n_sites = model.hilbert.size

  def one_chunk(c):
    ids = c * chunk + jnp.arange(chunk)
    uniforms = jax.vmap(lambda i: jax.random.uniform(
        jax.random.fold_in(key, i), (n_sites,), model.real_dtype))(ids)
    return sample_with_uniforms(model, params, uniforms)

  samples, log_prob = jax.lax.map(one_chunk, jnp.arange(n_chunks))
  return samples.reshape(-1, n_sites), log_prob.reshape(-1)


def sample_with_uniforms(model: Wavefunction, params, uniforms: jax.Array):
  """Samples [B, N] and log_prob [B] from given uniforms [B, N] in [0, 1).

  Sample b takes at site i the first local state whose cumulative
  conditional probability exceeds uniforms[b, i].
  """
  batch, n_sites = uniforms.shape
  dtype = model.real_dtype
  values = model.hilbert.local_states_array(dtype)  # [K]

  def step(carry, inputs):
    x, cache, log_prob = carry
    index, u = inputs  # scalar, [B]
    log_psi, cache = model.conditional_log_psi(params, cache, x, index)  # [B, K]
    log_p = model.machine_pow * log_psi.real
    cdf = jnp.cumsum(jnp.exp(log_p), axis=-1)
    # Scaling u by the total keeps the draw exact under round-off in the sum.
    k = jnp.sum(cdf[:, :-1] < (u * cdf[:, -1])[:, None], axis=-1)  # [B]
    x = jax.lax.dynamic_update_index_in_dim(x, values[k][:, None], index, axis=1)
    log_prob = log_prob + jnp.take_along_axis(log_p, k[:, None], axis=-1)[:, 0]
    return (x, cache, log_prob), None

  init = (jnp.zeros((batch, n_sites), dtype), model.init_cache(params, batch),
          jnp.zeros((batch,), dtype))
  (x, _, log_prob), _ = jax.lax.scan(
      step, init, (jnp.arange(n_sites), uniforms.T.astype(dtype)))
  return x, log_prob

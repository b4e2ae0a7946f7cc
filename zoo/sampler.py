"""Exact autoregressive sampling: site by site, no Markov chain.

For each site i the model gives p(s_i | s_<i) = |psi_i|^machine_pow and one
uniform number per sample picks s_i by inverse CDF. The loop over sites is a
single `lax.scan` whose carry holds the configurations, the running log
probability and the Haiku state cache of the fast models (slow models do a
full pass per site and carry an empty cache).

The uniforms of sample j come from `fold_in(key, j)`, so a sample depends only
on the key and its index: the same key gives the same samples whatever the
chunk size and however many devices share the batch.

A symmetrized model (`zoo.models.symmetric`) is sampled through its base:
sample j is drawn from the base, then group element g_j (uniform, from a
stream of its own) is undone, which gives exactly |psi_G|^machine_pow.

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

from zoo import checks
from zoo import chunks
from zoo import sharding
from zoo.models import Model, Wavefunction

# The stream, within sample j's key, of what a model that samples through
# a base (`Model.from_base_samples`: a symmetrized model's group element)
# draws for it.
GROUP_STREAM = 1


# With chunk_size=None, a fast model's samples go through the site loop in
# chunks whose cache takes at most this many bytes per device (a power of two
# samples, at least one), so that the per-site updates stay in the CPU's
# cache (the measurements: BENCHMARKS.md, "Tuned constants").
CACHE_BYTES_PER_CHUNK = 2 * 2**20


@functools.lru_cache(maxsize=256)
def cache_bytes_per_sample(model: Wavefunction) -> int:
  """Bytes of the fast cache per sample (0 for slow models, which ignore it)."""
  if not model.is_fast:
    return 0

  def cache():
    params, _ = model.init(jax.random.key(0))
    return model.init_cache(params, 1)
  return sum(leaf.size * leaf.dtype.itemsize
             for leaf in jax.tree.leaves(jax.eval_shape(cache)))


def sample(model: Wavefunction, params, key: jax.Array, n_samples: int, *,
           chunk_size: int | None = None, return_log_prob: bool = False,
           mesh: jax.sharding.Mesh | None = None):
  """Draws `n_samples` independent configurations from |psi|^machine_pow.

  Args:
    model: a `Wavefunction` (slow or fast).
    params: its parameters.
    key: a JAX random key.
    n_samples: number of samples n.
    chunk_size: samples drawn at once; bounds the memory of the cache and the
      activations. None: all at once, except that a fast model's samples go
      in chunks whose cache fits CACHE_BYTES_PER_CHUNK per device.
    return_log_prob: also return log p(x) = machine_pow * Re log psi(x).
    mesh: a batch mesh (`zoo.sharding.batch_mesh`) whose devices share every
      chunk; None keeps to the default device. The samples do not depend on
      it.

  Returns:
    samples [n, N] of local-state values (the model's real dtype), and
    log_prob [n] if asked for.
  """
  if not isinstance(model, Model):
    raise checks.FieldError("model", model,
                            "must be a zoo model (zoo.models.Model)")
  n_samples = checks.positive_int("n_samples", n_samples)
  chunk = chunk_for(n_samples, chunk_size, mesh, model=model)
  samples, log_prob = _draw_jit(model, params, key, n_samples, chunk, mesh)
  chex.assert_shape(samples, (n_samples, model.hilbert.size))
  return (samples, log_prob) if return_log_prob else samples


def chunk_for(n_samples: int, chunk_size: int | None, mesh=None,
              model: Wavefunction | None = None) -> int:
  """The chunk actually used; checks it splits evenly over the mesh.

  chunk_size=None: all n_samples, or with a `model` chunks whose cache fits
  CACHE_BYTES_PER_CHUNK per device (the samples do not depend on it).
  """
  n_samples = checks.positive_int("n_samples", n_samples)
  model = model.sampling_base
  if chunk_size is None and model is not None:
    per_sample = cache_bytes_per_sample(model)
    if per_sample:
      per_device = 2 ** int(math.log2(max(1, CACHE_BYTES_PER_CHUNK // per_sample)))
      devices = 1 if mesh is None else mesh.devices.size
      chunk_size = per_device * devices
  chunk = n_samples if chunk_size is None else min(
      checks.positive_int("chunk_size", chunk_size), n_samples)
  if mesh is not None:
    sharding.check_divisible("n_samples" if chunk == n_samples else "chunk_size",
                             chunk, mesh)
  return chunk


def draw(model: Wavefunction, params, key: jax.Array, n_samples: int,
         chunk: int, mesh: jax.sharding.Mesh | None = None):
  """Pure, jittable: samples [n, N] and log_prob [n], `chunk` at a time.

  `n_samples` and `chunk` are static; chunks run in a `lax.map`, each split
  over the mesh's devices when a mesh is given.
  """
  if model.sampling_base is not model:
    return _draw_through_base(model, params, key, n_samples, chunk, mesh)
  n_sites = model.hilbert.size
  n_chunks = math.ceil(n_samples / chunk)

  def one_chunk(c):
    ids = c * chunk + jnp.arange(chunk)
    uniforms = jax.vmap(lambda i: jax.random.uniform(
        jax.random.fold_in(key, i), (n_sites,), model.real_dtype))(ids)
    x, log_prob = sample_with_uniforms(
        model, params, sharding.constrain(uniforms, mesh), mesh=mesh)
    return sharding.constrain(x, mesh), sharding.constrain(log_prob, mesh)

  samples, log_prob = jax.lax.map(one_chunk, jnp.arange(n_chunks))
  samples = samples.reshape(-1, n_sites)[:n_samples]
  log_prob = log_prob.reshape(-1)[:n_samples]
  return sharding.constrain(samples, mesh), sharding.constrain(log_prob, mesh)


def _draw_through_base(model: Model, params, key, n_samples: int,
                       chunk: int, mesh):
  """Samples of the model's sampling base made its own (a symmetrized
  model's: each one's group element undone), and log |psi|^p of them by
  the model's log psi (`chunk` samples at once)."""
  x, _ = draw(model.sampling_base, params, key, n_samples, chunk, mesh)
  keys = jax.vmap(lambda j: jax.random.fold_in(
      jax.random.fold_in(key, j), GROUP_STREAM))(jnp.arange(n_samples))
  x = sharding.constrain(model.from_base_samples(x, keys), mesh)
  log_prob = chunks.map_chunks(
      lambda xc: model.machine_pow * model.log_psi(params, xc).real, x, chunk)
  return x, sharding.constrain(log_prob.astype(model.real_dtype), mesh)


_draw_jit = jax.jit(draw, static_argnums=(0, 3, 4, 5))


def sample_with_uniforms(model: Wavefunction, params, uniforms: jax.Array,
                         mesh: jax.sharding.Mesh | None = None):
  """Samples [B, N] and log_prob [B] from given uniforms [B, N] in [0, 1).

  At step t (site `model.order[t]`) sample b takes the first local state
  whose cumulative conditional probability exceeds uniforms[b, t] (times
  the sum of the probabilities, 1 up to round-off).
  """
  batch, n_sites = uniforms.shape
  dtype = model.real_dtype
  values = model.hilbert.local_states_array(dtype)  # [K]
  # Step t draws site order[t] (raster for most families).
  order = model.order
  raster = bool(np.all(order == np.arange(n_sites)))

  def step(carry, inputs):
    xt, cache, log_prob = carry  # xt: the samples site-major, [N, B]
    index, u = inputs  # scalar, [B]
    # The model reads one site of x.T, a contiguous row of xt (XLA fuses the
    # transpose into that read; a column of [B, N] would be a strided gather).
    log_psi, cache = model.conditional_log_psi(params, cache, xt.T, index)  # [B, K]
    log_p = model.machine_pow * log_psi.real
    cdf = jnp.cumsum(jnp.exp(log_p), axis=-1)
    # Scaling u by the total keeps the draw exact under round-off in the sum.
    # k is the first state whose cdf exceeds t = u * total (<=, not <), so a
    # state of probability zero is never drawn (a forbidden state of a space
    # of fixed total): cdf_{k-1} <= t < cdf_k means p_k > 0. The last state
    # would need t >= total, and u < 1 keeps u * total below the total
    # (round to nearest, total within round-off of 1).
    t = u * cdf[:, -1]
    k = jnp.sum(cdf[:, :-1] <= t[:, None], axis=-1)  # [B]
    site = index if raster else jnp.asarray(order)[index]
    xt = jax.lax.dynamic_update_index_in_dim(xt, values[k][None], site, axis=0)
    log_prob = log_prob + jnp.take_along_axis(log_p, k[:, None], axis=-1)[:, 0]
    return (xt, cache, log_prob), None

  # The batch axis of the carry (and of every cache leaf) stays split over
  # the mesh, so each device runs the site loop on its own samples.
  init = (sharding.constrain(jnp.zeros((n_sites, batch), dtype), mesh, axis=1),
          jax.tree.map(lambda a: sharding.constrain(a, mesh, axis=-1),
                       model.init_cache(params, batch)),
          sharding.constrain(jnp.zeros((batch,), dtype), mesh))
  (xt, _, log_prob), _ = jax.lax.scan(
      step, init, (jnp.arange(n_sites), uniforms.T.astype(dtype)))
  return xt.T, log_prob

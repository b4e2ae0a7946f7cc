"""Local energies that reuse what a configuration shares with its connected ones.

E_loc(x) = sum_x' <x|H|x'> psi(x') / psi(x) evaluates log psi on every
connected x'. A connected x' that first differs from x at generation step
j has the conditionals of x at every step before j, so

  log psi(x') = P_j(x) + sum_{t >= j} log psi_t(x'_t | x'_<t),

P_j(x) the sum of the first j conditionals of x. A fast model whose full
pass is itself a scan over the steps (the recurrent family) can start the
scan of x' from the cache x had at step j and skip the steps before it.
The steps are cut into SEGMENTS equal segments: one pass over x keeps the
cache at the start of each, and every x' runs from the start of the segment
that holds its j, so the work per x' is N - j up to a segment. Exact: the
same conditionals, summed in another order (equal to the full evaluation
to round-off, ~1e-15 in float64).

Models whose full pass is one parallel computation over the sites (the
masked and gated convolutions, the dense model, attention) evaluate their
connected configurations faster in full passes, and do so
(`reuses_prefix`).

Glossary of shapes:
  B: samples, C: samples in one chunk, N: sites, T: steps (= N),
  M: connected configurations per sample, K: local states.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.chunks import split_chunks

# Segments of the generation order a connected configuration restarts from.
SEGMENTS = 8
# Connected configurations per pass of restarts when local_energies is not
# told a chunk size: larger than a full pass's (CONFIGS_PER_PASS), since
# each segment's scan sees only the terms that restart in it
# (BENCHMARKS.md, "Tuned constants").
RESTART_CONFIGS_PER_PASS = 16384


def reuses_prefix(model) -> bool:
  """Whether `model`'s local energies restart from the shared prefix."""
  return model.restarts


def first_changed_steps(hamiltonian, order: np.ndarray) -> np.ndarray:
  """[M] the first step at which each connected configuration may differ
  from x (T for the diagonal term, which never does)."""
  step_of = np.argsort(order)
  sites = hamiltonian.connected_sites()  # [M, S], -1 where unused
  steps = np.where(sites >= 0, step_of[np.maximum(sites, 0)], len(order))
  return steps.min(axis=1)


def local_energies(model, hamiltonian, params, x: jax.Array, *,
                   chunk_size: int | None = None,
                   segments: int = SEGMENTS) -> jax.Array:
  """E_loc(x) [B] of `model` (a `zoo.Wavefunction`) under `hamiltonian`.

  A model that `reuses_prefix` restarts each connected configuration from
  x's cache (module docstring); any other goes through
  `hamiltonian.local_energy` with full passes. `chunk_size` as there: at
  most that many samples (times M) at once.
  """
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  if not reuses_prefix(model):
    return hamiltonian.local_energy(model.log_psi, params, x,
                                    chunk_size=chunk_size)
  segments = checks.positive_int("segments", segments)
  batch = x.shape[0]
  if chunk_size is None:
    chunk_size = max(1, RESTART_CONFIGS_PER_PASS // hamiltonian.n_connected)
  one = lambda chunk: _restarted(model, hamiltonian, params, chunk, segments)
  if chunk_size >= batch:
    return one(x)
  e_loc = jax.lax.map(one, split_chunks(x, chunk_size, "first"))
  return e_loc.reshape(-1)[:batch]


def _restarted(model, hamiltonian, params, x: jax.Array,
               segments: int) -> jax.Array:
  """The local energies of one chunk x [C, N] by restarts (module doc)."""
  batch, n = x.shape
  order = np.asarray(model.order)
  dtype = jnp.result_type(model.dtype, model.real_dtype)
  xp, mels = hamiltonian.connected(x)  # [C, M, N], [C, M]
  m = xp.shape[1]
  first = first_changed_steps(hamiltonian, order)  # [M]
  bounds = np.unique(np.linspace(0, n, min(segments, n) + 1).astype(int))

  def scan_steps(cache, configs, start, stop):
    """Runs steps start .. stop - 1 of configs [b, N] from `cache`: (cache
    after them, the sum of their log-conditionals [b])."""
    indices = model.hilbert.states_to_indices(configs)  # [b, N]
    sites = jnp.asarray(order)

    def step(carry, t):
      cache, total = carry
      log_psi, cache = model.conditional_log_psi(params, cache, configs, t)
      k = jax.lax.dynamic_index_in_dim(indices, sites[t], axis=1,
                                       keepdims=False)  # [b]
      total = total + jnp.take_along_axis(log_psi, k[:, None], axis=1)[:, 0]
      return (cache, total), None

    (cache, total), _ = jax.lax.scan(
        step, (cache, jnp.zeros(configs.shape[0], dtype)),
        jnp.arange(start, stop))
    return cache, total

  # One pass over x: the cache at each segment's start, and the prefix sums.
  cache = model.init_cache(params, batch)
  starts, prefix = [], [jnp.zeros(batch, dtype)]
  for begin, end in zip(bounds[:-1], bounds[1:]):
    starts.append(cache)
    cache, total = scan_steps(cache, x, begin, end)
    prefix.append(prefix[-1] + total)
  log_psi = jnp.zeros((batch, m), dtype).at[:, :].set(prefix[-1][:, None])
  for g, (begin, end) in enumerate(zip(bounds[:-1], bounds[1:])):
    terms = np.flatnonzero((first >= begin) & (first < end))
    if not terms.size:
      continue
    configs = xp[:, terms].reshape(batch * terms.size, n)
    # Sample b's cache, once for each of its terms (the batch is last).
    cache = jax.tree.map(lambda a: jnp.repeat(a, terms.size, axis=-1),
                         starts[g])
    _, total = scan_steps(cache, configs, begin, n)
    log_psi = log_psi.at[:, terms].set(
        prefix[g][:, None] + total.reshape(batch, terms.size))
  ratios = jnp.exp(log_psi - log_psi[:, :1])
  # A vanishing element must contribute 0 even if psi(x') overflows.
  return jnp.sum(jnp.where(mels == 0, 0, mels * ratios), axis=-1)

"""The variational energy, its statistics and its gradient from samples.

Samples x are drawn from p(x) = |psi(x)|^2 / <psi|psi> (exactly, by the
autoregressive sampler), or come with weights w(x) (e.g. every state with its
exact probability, which turns every estimate into the exact value). With
weights normalized to sum to one and the local energy
E_loc(x) = <x|H|psi> / <x|psi>,

  E = <H> = sum_x w(x) E_loc(x),

and with O_k(x) = d log psi(x) / d theta_k for a real parameter theta_k,

  dE / d theta_k = 2 Re sum_x w(x) conj(O_k(x)) (E_loc(x) - E)

(differentiate psi^dag H psi / psi^dag psi and use that H is Hermitian).
Subtracting E makes the weights of O_k sum to zero, which removes the
variance that <O_k> alone would bring; the same sum with centred O_k is the
covariance form of the textbook estimator.

Complex parameters. A complex parameter theta = a + i b counts as two real
ones, a and b; log psi need not be holomorphic (the ARNNs here are not:
their activations act on real and imaginary parts apart, and the
normalization uses Re z). The gradient of a complex leaf is returned as

  G = dE/da + i dE/db,

the conjugate of what `jax.grad` returns for a real function of complex
inputs. This is the convention optax expects: `params - lr * G` is plain
gradient descent on (a, b), and adam's moments of |G|^2 are those of the two
real gradients. For real leaves G is the ordinary gradient.

In JAX terms: for a cotangent c [B] of log psi, `vjp(c)` of a complex leaf
is Re(c J_a) - i Re(c J_b) with J_a, J_b the derivatives along a and b, so

  G = conj(vjp(2 w conj(E_loc - E))),

one reverse pass over the samples, no per-sample Jacobian.

Glossary of shapes:
  B: samples (or states when summing over the whole space), N: sites,
  C: samples in one chunk, P: real parameters (a complex leaf counts twice).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from zoo import checks
from zoo.chunks import split_chunks

LogPsiFn = Callable[[Any, jax.Array], jax.Array]


class EnergyStats(NamedTuple):
  """Statistics of the local energy; all scalars of the real dtype.

  Attributes:
    mean: Re <E_loc>, the energy estimate.
    error: standard error of the mean, sqrt(variance / n_eff); the samples
      are independent, so no autocorrelation enters. n_eff = 1 / sum w^2 is
      the number of samples for equal weights.
    variance: <|E_loc - <E_loc>|^2>, zero for an eigenstate.
  """
  mean: jax.Array
  error: jax.Array
  variance: jax.Array


class Estimate(NamedTuple):
  """The energy, its gradient and the local energies it came from.

  Attributes:
    stats: `EnergyStats`.
    gradient: dE/dtheta, a pytree like params (complex leaves: see the
      module docstring).
    local_energies: [B] E_loc, complex if log psi is.
  """
  stats: EnergyStats
  gradient: Any
  local_energies: jax.Array


def _check_samples(x) -> jax.Array:
  x = jnp.asarray(x)
  if x.ndim != 2:
    raise ValueError(f"x must have shape [B, N], got shape {tuple(x.shape)}")
  return x


def normalized_weights(weights, n_samples: int, dtype) -> jax.Array:  # [B]
  """Weights that sum to one: 1 / B each when `weights` is None."""
  if weights is None:
    return jnp.full((n_samples,), 1.0 / n_samples, dtype)
  weights = jnp.asarray(weights, dtype)
  if weights.shape != (n_samples,):
    raise ValueError(
        f"weights must have shape [B] = ({n_samples},), one per sample, got "
        f"shape {tuple(weights.shape)}")
  return weights / jnp.sum(weights)


def real_dtype_of(params) -> Any:
  """The real dtype of the parameters (float32 for complex64 leaves)."""
  leaves = jax.tree.leaves(params)
  if not leaves:
    raise ValueError("params must hold at least one array, got an empty tree")
  return jnp.finfo(jnp.result_type(*leaves)).dtype


def energy_stats(local_energies: jax.Array,  # [B]
                 weights: jax.Array | None = None) -> EnergyStats:
  """Mean, standard error and variance of the local energies."""
  local_energies = jnp.asarray(local_energies)
  if local_energies.ndim != 1:
    raise ValueError(
        f"local_energies must have shape [B], got shape "
        f"{tuple(local_energies.shape)}")
  real = jnp.finfo(local_energies.dtype).dtype
  w = normalized_weights(weights, local_energies.shape[0], real)  # [B]
  mean = jnp.sum(w * local_energies)
  variance = jnp.sum(w * jnp.abs(local_energies - mean)**2)
  n_eff = 1.0 / jnp.sum(w**2)
  return EnergyStats(mean=mean.real, error=jnp.sqrt(variance / n_eff),
                     variance=variance)


def log_psi_vjp(log_psi_fn: LogPsiFn, params, x: jax.Array,  # [B, N]
                cotangent: jax.Array,  # [B]
                chunk_size: int | None = None):
  """conj(vjp(cotangent)) of params -> log_psi_fn(params, x), summed.

  That is, sum_x Re(c(x) O(x)) per real coordinate, packed into complex
  leaves as (d/da) + i (d/db). With a chunk size the reverse pass sees at
  most that many samples at a time.
  """

  def one_chunk(x_chunk, c_chunk):
    _, vjp = jax.vjp(lambda p: log_psi_fn(p, x_chunk), params)
    (g,) = vjp(c_chunk)
    return jax.tree.map(jnp.conj, g)

  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  if chunk_size is None or chunk_size >= x.shape[0]:
    return one_chunk(x, cotangent)
  # Padded rows carry a zero cotangent and so add nothing.
  x_chunks = split_chunks(x, chunk_size, "first")
  c_chunks = split_chunks(cotangent, chunk_size, 0)

  def accumulate(total, inputs):
    g = one_chunk(*inputs)
    return jax.tree.map(jnp.add, total, g), None

  zero = jax.tree.map(jnp.zeros_like, params)
  total, _ = jax.lax.scan(accumulate, zero, (x_chunks, c_chunks))
  return total


@functools.partial(jax.jit, static_argnames=("log_psi_fn", "chunk_size"))
def energy_gradient(log_psi_fn: LogPsiFn, params, x: jax.Array,  # [B, N]
                    local_energies: jax.Array,  # [B]
                    weights: jax.Array | None = None,
                    chunk_size: int | None = None):
  """dE/dtheta = 2 Re sum_x w conj(O) (E_loc - E), as one vjp."""
  x = _check_samples(x)
  local_energies = jnp.asarray(local_energies)
  real = real_dtype_of(params)
  w = normalized_weights(weights, x.shape[0], real)
  centred = local_energies - jnp.sum(w * local_energies)  # [B]
  out = jax.eval_shape(log_psi_fn, params, x[:1])
  cotangent = (2 * w * jnp.conj(centred)).astype(out.dtype)  # [B]
  return log_psi_vjp(log_psi_fn, params, x, cotangent, chunk_size)


@functools.partial(jax.jit,
                   static_argnames=("log_psi_fn", "hamiltonian", "chunk_size",
                                    "local_energy_fn"))
def expect_and_grad(log_psi_fn: LogPsiFn, hamiltonian, params,
                    x: jax.Array,  # [B, N]
                    *, weights: jax.Array | None = None,
                    chunk_size: int | None = None,
                    local_energy_fn=None,
                    shift: jax.Array | None = None) -> Estimate:
  """Energy statistics and gradient from samples x (or states and weights).

  Args:
    log_psi_fn: `log_psi_fn(params, x)` maps [C, N] -> [C] (e.g.
      `model.log_psi`).
    hamiltonian: a `zoo.physics` Hamiltonian with `local_energy`.
    params: the variational parameters, real or complex leaves.
    x: [B, N] samples from |psi|^2, or any states when weights are given.
    weights: [B] nonnegative weights, normalized here; None means samples
      from |psi|^2 (weight 1 / B each). Exact probabilities of all states
      give the exact energy and gradient.
    chunk_size: at most this many samples go through the local energy (times
      the connected configurations) and the reverse pass at once.
    local_energy_fn: (params, x) -> [B] local energies (e.g.
      `zoo.vmc.local_energy.local_energies` of a model); None: full passes,
      `hamiltonian.local_energy(log_psi_fn, ...)`.
    shift: [B] real, added to the local energies in the gradient but not in
      the statistics: T log p(x) gives the gradient of the free energy
      <E> - T S, S = -<log p> (variational annealing, see `make_vmc`).

  Returns:
    An `Estimate`.
  """
  x = _check_samples(x)
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  local_energies = _local_energies(log_psi_fn, hamiltonian, params, x,
                                   chunk_size, local_energy_fn)  # [B]
  stats = energy_stats(local_energies, weights)
  gradient = energy_gradient(
      log_psi_fn, params, x,
      local_energies if shift is None else local_energies + shift, weights,
      chunk_size)
  return Estimate(stats=stats, gradient=gradient,
                  local_energies=local_energies)


def _local_energies(log_psi_fn, hamiltonian, params, x, chunk_size,
                    local_energy_fn):
  if local_energy_fn is None:
    return hamiltonian.local_energy(log_psi_fn, params, x,
                                    chunk_size=chunk_size)
  return local_energy_fn(params, x)


def expect_and_grad_sharded(log_psi_fn: LogPsiFn, hamiltonian, params,
                            x: jax.Array,  # [n, N], split over mesh
                            mesh: jax.sharding.Mesh,
                            *, chunk_size: int | None = None,
                            local_energy_fn=None,
                            shift: jax.Array | None = None) -> Estimate:
  """`expect_and_grad` of samples split over a batch mesh (equal weights).

  Each device computes the local energies and its share of the gradient on
  its own samples (`chunk_size` at a time); only the energy sums and the
  gradient are reduced across devices (`psum`). Inside jit.
  """
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from zoo import sharding  # pylint: disable=g-import-not-at-top
  axis = sharding.BATCH_AXIS
  n_total = x.shape[0]

  def per_device(params, x, shift):  # [n / D, N], [n / D]
    e_loc = _local_energies(log_psi_fn, hamiltonian, params, x, chunk_size,
                            local_energy_fn)  # [n / D]
    mean = jax.lax.psum(jnp.sum(e_loc), axis) / n_total
    variance = jax.lax.psum(jnp.sum(jnp.abs(e_loc - mean)**2), axis) / n_total
    out = jax.eval_shape(log_psi_fn, params, x[:1])
    f_loc = e_loc + shift
    f_mean = jax.lax.psum(jnp.sum(f_loc), axis) / n_total
    cotangent = (2 / n_total * jnp.conj(f_loc - f_mean)).astype(out.dtype)
    gradient = jax.lax.psum(
        log_psi_vjp(log_psi_fn, params, x, cotangent, chunk_size), axis)
    return e_loc, mean, variance, gradient

  # check_vma=False: the reverse pass then gives each device's own share of
  # the gradient (no implicit reduction), and the psum above adds them once.
  if shift is None:
    shift = jnp.zeros(n_total, real_dtype_of(params))
  e_loc, mean, variance, gradient = jax.shard_map(
      per_device, mesh=mesh, in_specs=(P(), P(axis), P(axis)),
      out_specs=(P(axis), P(), P(), P()), check_vma=False)(params, x, shift)
  stats = EnergyStats(mean=mean.real, error=jnp.sqrt(variance / n_total),
                      variance=variance)
  return Estimate(stats=stats, gradient=gradient, local_energies=e_loc)


class RealCoordinates:
  """Flat real coordinates of a pytree whose leaves may be complex.

  A real leaf gives its entries; a complex leaf gives its real parts, then
  its imaginary parts. `flatten(G)` of a gradient in the convention of this
  module is the ordinary real gradient vector, and `unflatten` of a real
  update vector is the update pytree.
  """

  def __init__(self, like):
    leaves, self.treedef = jax.tree.flatten(like)
    if not leaves:
      raise ValueError("params must hold at least one array, got an empty tree")
    self.shapes = [jnp.shape(leaf) for leaf in leaves]
    self.dtypes = [jnp.result_type(leaf) for leaf in leaves]
    self.is_complex = [jnp.issubdtype(d, jnp.complexfloating)
                       for d in self.dtypes]
    self.real_dtype = real_dtype_of(like)
    self.size = sum(math.prod(s) * (2 if c else 1)
                    for s, c in zip(self.shapes, self.is_complex))

  def flatten(self, tree) -> jax.Array:  # [P]
    parts = []
    for leaf, is_complex in zip(jax.tree.leaves(tree), self.is_complex):
      leaf = jnp.ravel(leaf)
      parts += [leaf.real, leaf.imag] if is_complex else [leaf.real]
    return jnp.concatenate(parts).astype(self.real_dtype)

  def unflatten(self, vector: jax.Array):  # [P] -> pytree
    leaves, start = [], 0
    for shape, dtype, is_complex in zip(self.shapes, self.dtypes,
                                        self.is_complex):
      size = math.prod(shape)
      leaf = vector[start:start + size]
      start += size
      if is_complex:
        leaf = leaf + 1j * vector[start:start + size]
        start += size
      leaves.append(leaf.reshape(shape).astype(dtype))
    return jax.tree.unflatten(self.treedef, leaves)

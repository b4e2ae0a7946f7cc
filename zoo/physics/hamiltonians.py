"""Spin-1/2 Hamiltonians as generators of connected configurations.

A configuration x holds sigma_z eigenvalues (-1 or +1, +1 is spin up) as
floats, one per site, in the site order of `zoo.physics.lattice`. For each x a
Hamiltonian lists the configurations x' with <x|H|x'> possibly nonzero, and the
matrix elements <x|H|x'>; the local energy of a wavefunction psi is then

  E_loc(x) = sum_x' <x|H|x'> psi(x') / psi(x).

Every Hamiltonian here is a sum of three kinds of Pauli terms, which is all
that `connected`, `local_energy` and `to_sparse` need to know:

  zz:        c * sz_i sz_j            (diagonal)
  x:         c * sx_i                 (flips site i)
  flip-flop: c * (s+_i s-_j + s-_i s+_j) = c/2 * (sx_i sx_j + sy_i sy_j)
                                      (swaps an antiparallel pair i, j)

with Pauli matrices sz, sx, sy and s+- = (sx +- i sy) / 2.

Glossary of shapes:
  B: batch, N: sites, M: connected configurations per x (fixed for a given
  Hamiltonian, the diagonal entry first), Z / X / F: zz, x and flip-flop terms,
  C: chunk of the batch, S: basis states of the matrix (2**N or a sector).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse

from zoo import checks
from zoo import chunks
from zoo import hilbert as hilbert_lib
from zoo.physics import lattice as lattice_lib

# Connected configurations per network pass when local_energy is not told a
# chunk size: passes of about this size stay in the CPU's cache (the
# measurements: BENCHMARKS.md, "Tuned constants").
CONFIGS_PER_PASS = 1024

# Dense matrices are meant for checks on small systems.
MAX_DENSE_SITES = 14
# 2**N states are enumerated as int64 bit strings; beyond this they would
# not fit in memory anyway.
MAX_SPARSE_SITES = 30

LogPsiFn = Callable[[Any, jax.Array], jax.Array]


class PauliTerms(NamedTuple):
  """The coefficients of a spin-1/2 Hamiltonian, as host-side numpy arrays."""
  zz_bonds: np.ndarray  # [Z, 2] int
  zz_coeffs: np.ndarray  # [Z]
  x_sites: np.ndarray  # [X] int
  x_coeffs: np.ndarray  # [X]
  flip_bonds: np.ndarray  # [F, 2] int
  flip_coeffs: np.ndarray  # [F]

  @property
  def conserves_sz(self) -> bool:
    """Whether H commutes with the total S^z (no single-spin flips)."""
    return not np.any(self.x_coeffs != 0)


def _check_lattice(value) -> None:
  if not isinstance(value, lattice_lib.Lattice):
    raise checks.FieldError("lattice", value,
                            "must be a zoo.physics.lattice.Lattice")


def _marshall_signs(lattice: lattice_lib.Lattice,
                    bonds: np.ndarray) -> np.ndarray:  # [E]
  """Sign picked up by a flip-flop term under the Marshall rotation.

  The rotation U = prod_{i in sublattice 1} sz_i maps sx_i -> -sx_i and
  sy_i -> -sy_i on that sublattice, so a flip-flop term on (i, j) is
  multiplied by s_i s_j with s = -1 on sublattice 1: -1 across sublattices,
  +1 within one.
  """
  if not lattice.is_bipartite:
    raise checks.FieldError(
        "marshall_sign", True,
        f"needs a bipartite lattice, got {lattice} (a periodic side of odd "
        "length joins a sublattice to itself)")
  sub = lattice.sublattice
  return np.where(sub[bonds[:, 0]] == sub[bonds[:, 1]], 1.0, -1.0)


def local_energy_sum(mels: jax.Array,  # [B, M]
                     log_psi_xp: jax.Array,  # [B, M]
                     log_psi_x: jax.Array) -> jax.Array:  # [B]
  """E_loc(x) = sum_x' <x|H|x'> psi(x') / psi(x) [B] from the matrix
  elements and log psi of the connected configurations and of x."""
  ratios = jnp.exp(log_psi_xp - log_psi_x[:, None])
  # A vanishing element must contribute 0 even if psi(x') overflows.
  return jnp.sum(jnp.where(mels == 0, 0, mels * ratios), axis=-1)


class SpinHalfHamiltonian:
  """Shared machinery of spin-1/2 Hamiltonians given by `PauliTerms`.

  Subclasses are frozen dataclasses with a `lattice` field and define
  `terms()`. Being frozen dataclasses, they are hashable and can be passed to
  `jax.jit` as static arguments.
  """

  lattice: lattice_lib.Lattice

  def terms(self) -> PauliTerms:
    raise NotImplementedError

  @property
  def hilbert(self) -> hilbert_lib.Hilbert:
    return hilbert_lib.spin_half(self.lattice.shape)

  def check_space(self, hilbert: hilbert_lib.Hilbert) -> None:
    """Checks that configurations of `hilbert` are this Hamiltonian's.

    The sites and local states must be `self.hilbert`'s; a fixed total (an
    S^z sector) only if H conserves S^z, so that the connected
    configurations stay in the sector.
    """
    if dataclasses.replace(hilbert, total=None) != self.hilbert:
      raise checks.FieldError(
          "hilbert", hilbert,
          f"must be {self.hilbert}, or a sector of it: the space of "
          f"{type(self).__name__} on {self.lattice}")
    if hilbert.total is not None and not self.terms().conserves_sz:
      raise checks.FieldError(
          "hilbert.total", hilbert.total,
          f"needs a Hamiltonian that conserves S^z; {type(self).__name__} "
          "does not (use None)")

  @property
  def n_sites(self) -> int:
    return self.lattice.n_sites

  def connected_sites(self) -> np.ndarray:  # [M, 2]
    """The sites each connected configuration of `connected` may change, in
    its order (the diagonal first), -1 where there are fewer than two."""
    terms = self.terms()
    none = np.full((1, 2), -1)
    singles = np.stack([terms.x_sites, np.full(len(terms.x_sites), -1)],
                       axis=1)
    return np.concatenate([none, singles.reshape(-1, 2),
                           np.asarray(terms.flip_bonds).reshape(-1, 2)])

  @property
  def n_connected(self) -> int:
    """M: connected configurations per x, the diagonal included."""
    terms = self.terms()
    return 1 + len(terms.x_sites) + len(terms.flip_bonds)

  def description(self) -> dict[str, Any]:
    """A JSON-friendly description that identifies this Hamiltonian."""
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
              if f.name != "lattice"}
    return {"type": type(self).__name__, "shape": list(self.lattice.shape),
            "pbc": self.lattice.pbc, **fields}

  def connected(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Connected configurations and matrix elements <x|H|x'>.

    Args:
      x: [B, N] configurations with values -1, +1.

    Returns:
      xp: [B, M, N] connected configurations; xp[:, 0] == x is the diagonal.
      mels: [B, M] matrix elements, of x's floating dtype. Off-diagonal
        entries that vanish for a given x (a flip-flop on a parallel pair)
        have mel 0 and xp equal to x, so that xp stays a valid configuration.
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[-1] != self.n_sites:
      raise ValueError(
          f"x must have shape [B, {self.n_sites}], got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      x = x.astype(jnp.result_type(float))
    dtype = x.dtype
    terms = self.terms()
    n = self.n_sites

    zi, zj = terms.zz_bonds[:, 0], terms.zz_bonds[:, 1]
    diag = jnp.sum(jnp.asarray(terms.zz_coeffs, dtype) * x[:, zi] * x[:, zj],
                   axis=-1)  # [B]

    # Single flips: multiply x by -1 at one site.
    x_flip = 1.0 - 2.0 * np.eye(n)[terms.x_sites]  # [X, N]
    xp_x = x[:, None, :] * jnp.asarray(x_flip, dtype)  # [B, X, N]
    mels_x = jnp.broadcast_to(jnp.asarray(terms.x_coeffs, dtype),
                              (x.shape[0], len(terms.x_sites)))  # [B, X]

    # Flip-flops act only on antiparallel pairs; parallel pairs keep x.
    fi, fj = terms.flip_bonds[:, 0], terms.flip_bonds[:, 1]
    pair_mask = (np.eye(n)[fi] + np.eye(n)[fj]).astype(bool)  # [F, N]
    antiparallel = x[:, fi] != x[:, fj]  # [B, F]
    swap = antiparallel[:, :, None] & pair_mask  # [B, F, N]
    xp_f = jnp.where(swap, -x[:, None, :], x[:, None, :])  # [B, F, N]
    mels_f = jnp.where(antiparallel, jnp.asarray(terms.flip_coeffs, dtype),
                       0.0).astype(dtype)  # [B, F]

    xp = jnp.concatenate([x[:, None, :], xp_x, xp_f], axis=1)
    mels = jnp.concatenate([diag[:, None], mels_x, mels_f], axis=1)
    return xp, mels

  def local_energy(self, log_psi_fn: LogPsiFn, params, x: jax.Array,
                   chunk_size: int | None = None) -> jax.Array:
    """E_loc(x) = sum_x' <x|H|x'> psi(x') / psi(x).

    Args:
      log_psi_fn: `log_psi_fn(params, x)` maps [b, N] -> [b], real or complex.
      params: passed through to log_psi_fn.
      x: [B, N] configurations.
      chunk_size: log_psi_fn sees at most chunk_size * M configurations at
        a time (the chunks run under `lax.map`); B need not be a multiple of
        it. None: about CONFIGS_PER_PASS configurations at a time.

    Returns:
      [B] local energies, complex if log_psi_fn is.
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[-1] != self.n_sites:
      raise ValueError(
          f"x must have shape [B, {self.n_sites}], got {x.shape}")
    checks.optional_positive_int("chunk_size", chunk_size)

    def chunk_local_energy(x_chunk):  # [C, N] -> [C]
      xp, mels = self.connected(x_chunk)  # [C, M, N], [C, M]
      c, m, n = xp.shape
      log_psi_xp = log_psi_fn(params, xp.reshape(c * m, n)).reshape(c, m)
      # xp[:, 0] is x itself, so its log_psi is reused rather than recomputed.
      return local_energy_sum(mels, log_psi_xp, log_psi_xp[:, 0])

    if chunk_size is None:
      chunk_size = max(1, CONFIGS_PER_PASS // self.n_connected)
    return chunks.map_chunks(chunk_local_energy, x, chunk_size)

  def to_sparse(self, *,
                sector: float | None = None) -> scipy.sparse.csr_matrix:
    """The Hamiltonian as a sparse matrix.

    Args:
      sector: None for the full space, in the order of
        `self.hilbert.all_states()` (index = the bit string of the sites,
        site 0 most significant, bit 1 = spin up). Otherwise the value of the
        total S^z = (n_up - n_down) / 2 to restrict to, in the order of
        `sz_sector_states(N, sector)`; the Hamiltonian must conserve S^z.

    Returns:
      [S, S] float64 csr matrix.
    """
    n = self.n_sites
    if n > MAX_SPARSE_SITES:
      raise ValueError(
          f"to_sparse() supports N <= {MAX_SPARSE_SITES} sites, got N={n}")
    terms = self.terms()
    if sector is None:
      basis = np.arange(2**n, dtype=np.int64)
      index_of = lambda states: states
    else:
      if not terms.conserves_sz:
        raise ValueError(
            f"sector={sector!r} needs a Hamiltonian that conserves S^z; "
            f"{type(self).__name__} has single-spin flips")
      basis = sz_sector_states(n, sector)
      index_of = lambda states: np.searchsorted(basis, states)
    return _pauli_matrix(terms, n, basis, index_of)

  def to_dense(self) -> np.ndarray:  # [2**N, 2**N]
    """The Hamiltonian as a dense matrix, in `hilbert.all_states()` order."""
    if self.n_sites > MAX_DENSE_SITES:
      raise ValueError(
          f"to_dense() supports N <= {MAX_DENSE_SITES} sites, "
          f"got N={self.n_sites}; use to_sparse()")
    return self.to_sparse().toarray()


def sz_sector_states(n_sites: int, sz: float) -> np.ndarray:  # [S]
  """Bit strings (site 0 most significant) with total S^z = sz, ascending.

  Built from combinations of up sites, never by filtering all 2**N states.
  """
  n_up = n_sites / 2 + sz
  if not float(n_up).is_integer() or not 0 <= n_up <= n_sites:
    raise ValueError(
        f"sector (total S^z) must be one of -N/2, -N/2 + 1, ..., N/2 for "
        f"N={n_sites}, got {sz!r}")
  n_up = int(n_up)
  # Each row of `up` lists the up sites of one state.
  up = np.array(list(itertools.combinations(range(n_sites), n_up)),
                dtype=np.int64).reshape(-1, n_up)
  states = np.sum(np.left_shift(1, n_sites - 1 - up), axis=-1, dtype=np.int64)
  return np.sort(states)


def _pauli_matrix(terms: PauliTerms, n: int, basis: np.ndarray,
                  index_of: Callable[[np.ndarray], np.ndarray]
                  ) -> scipy.sparse.csr_matrix:
  """Matrix of `terms` on the bit-string `basis` [S]; index_of maps states."""
  spin = lambda site: 2 * ((basis >> (n - 1 - site)) & 1) - 1  # [S]
  rows = [np.arange(len(basis))]
  diag = np.zeros(len(basis))
  for (i, j), c in zip(terms.zz_bonds, terms.zz_coeffs):
    diag += c * spin(i) * spin(j)
  cols, vals = [rows[0]], [diag]
  for i, c in zip(terms.x_sites, terms.x_coeffs):
    rows.append(rows[0])
    cols.append(index_of(basis ^ (1 << (n - 1 - int(i)))))
    vals.append(np.full(len(basis), c))
  for (i, j), c in zip(terms.flip_bonds, terms.flip_coeffs):
    (rows_f,) = np.nonzero(spin(i) != spin(j))
    rows.append(rows_f)
    cols.append(index_of(basis[rows_f] ^ ((1 << (n - 1 - int(i)))
                                         | (1 << (n - 1 - int(j))))))
    vals.append(np.full(len(rows_f), c))
  index_dtype = np.int32 if len(basis) < 2**31 else np.int64
  matrix = scipy.sparse.csr_matrix(
      (np.concatenate(vals),
       (np.concatenate(rows).astype(index_dtype),
        np.concatenate(cols).astype(index_dtype))),
      shape=(len(basis), len(basis)))
  matrix.eliminate_zeros()
  return matrix


@dataclasses.dataclass(frozen=True)
class TransverseFieldIsing(SpinHalfHamiltonian):
  """H = -J sum_<ij> sz_i sz_j - h sum_i sx_i, Pauli matrices, <ij> = bonds(1).

  M = N + 1 connected configurations.
  """

  lattice: lattice_lib.Lattice
  h: float
  J: float = 1.0

  def __post_init__(self):
    _check_lattice(self.lattice)
    object.__setattr__(self, "h", checks.finite_number("h", self.h))
    object.__setattr__(self, "J", checks.finite_number("J", self.J))

  def terms(self) -> PauliTerms:
    bonds = self.lattice.bonds(1)
    sites = np.arange(self.n_sites)
    return PauliTerms(
        zz_bonds=bonds, zz_coeffs=np.full(len(bonds), -self.J),
        x_sites=sites, x_coeffs=np.full(len(sites), -self.h),
        flip_bonds=np.zeros((0, 2), np.int64), flip_coeffs=np.zeros(0))


def _exchange_terms(lattice: lattice_lib.Lattice,
                    couplings: dict[int, float],
                    marshall_sign: bool) -> PauliTerms:
  """sum over orders k of J_k sum_{bonds(k)} S_i . S_j, S = sigma / 2.

  S_i . S_j = 1/4 sz_i sz_j + 1/2 (s+_i s-_j + s-_i s+_j).
  """
  bonds = [lattice.bonds(order) for order in couplings]
  exchange = [np.full(len(b), j) for b, j in zip(bonds, couplings.values())]
  bonds = np.concatenate(bonds).reshape(-1, 2)
  exchange = np.concatenate(exchange)
  flip_coeffs = exchange / 2
  if marshall_sign:
    flip_coeffs = flip_coeffs * _marshall_signs(lattice, bonds)
  return PauliTerms(
      zz_bonds=bonds, zz_coeffs=exchange / 4,
      x_sites=np.zeros(0, np.int64), x_coeffs=np.zeros(0),
      flip_bonds=bonds, flip_coeffs=flip_coeffs)


@dataclasses.dataclass(frozen=True)
class Heisenberg(SpinHalfHamiltonian):
  """H = J sum_<ij> S_i . S_j with S = sigma / 2, <ij> = bonds(1).

  With marshall_sign=True, H is rotated by U = prod_{i in sublattice 1} sz_i
  (Marshall 1955), which flips the sign of every flip-flop term; for J > 0 on
  a bipartite lattice the ground state then has positive amplitudes. The
  spectrum is unchanged. M = 1 + number of bonds.
  """

  lattice: lattice_lib.Lattice
  J: float = 1.0
  marshall_sign: bool = False

  def __post_init__(self):
    _check_lattice(self.lattice)
    object.__setattr__(self, "J", checks.finite_number("J", self.J))
    object.__setattr__(self, "marshall_sign",
                       checks.boolean("marshall_sign", self.marshall_sign))
    if self.marshall_sign:
      _marshall_signs(self.lattice, self.lattice.bonds(1))  # Checks bipartite.

  def terms(self) -> PauliTerms:
    return _exchange_terms(self.lattice, {1: self.J}, self.marshall_sign)


@dataclasses.dataclass(frozen=True)
class J1J2(SpinHalfHamiltonian):
  """H = J1 sum_<ij> S_i . S_j + J2 sum_<<ij>> S_i . S_j, S = sigma / 2.

  <ij> are `bonds(1)`, <<ij>> are `bonds(2)` (second neighbours on a chain,
  diagonals on a rectangle). marshall_sign=True applies the same rotation as
  in `Heisenberg`: J1 flip-flops, which join the two sublattices, change sign;
  J2 flip-flops, within one sublattice, do not. The rotated ground state is
  positive only for small J2, but the spectrum is always unchanged.
  M = 1 + number of bonds of both orders.
  """

  lattice: lattice_lib.Lattice
  J2: float
  J1: float = 1.0
  marshall_sign: bool = False

  def __post_init__(self):
    _check_lattice(self.lattice)
    object.__setattr__(self, "J2", checks.finite_number("J2", self.J2))
    object.__setattr__(self, "J1", checks.finite_number("J1", self.J1))
    object.__setattr__(self, "marshall_sign",
                       checks.boolean("marshall_sign", self.marshall_sign))
    if self.marshall_sign:
      _marshall_signs(self.lattice, self.lattice.bonds(1))  # Checks bipartite.

  def terms(self) -> PauliTerms:
    return _exchange_terms(self.lattice, {1: self.J1, 2: self.J2},
                           self.marshall_sign)


# The Hamiltonians by the names configs give them (`hamiltonian.kind`).
KINDS = {
    "tfim": TransverseFieldIsing,
    "heisenberg": Heisenberg,
    "j1j2": J1J2,
}


def coupling_fields(kind: str) -> tuple[str, ...]:
  """The fields of a kind of KINDS besides its lattice."""
  return tuple(f.name for f in dataclasses.fields(KINDS[kind])
               if f.name != "lattice")

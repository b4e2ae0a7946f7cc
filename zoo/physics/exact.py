"""Ground states by exact (Lanczos) diagonalization: energies with a disk
cache, and the state itself in the basis of a Hamiltonian's sparse matrix.

The cache holds one small JSON file per (Hamiltonian, sector), named by a
hash of a stable description (type, lattice shape, boundary, couplings,
sector), in `$ARNN_ZOO_CACHE` or `~/.cache/arnn-zoo/ed`. Files are written
atomically; an unwritable or unreadable cache only means recomputing.

Glossary of shapes:
  N: sites, S: basis states (2**N, or the size of an S^z sector).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from zoo.physics import hamiltonians

# Lanczos on 2**20 states takes seconds and ~1 GB; beyond it, minutes and more.
MAX_ED_SITES = 20
# Below this many states a dense eigensolver is both simpler and faster.
_DENSE_BELOW = 512
# Bump when the stored numbers change meaning, to orphan old cache files.
_CACHE_VERSION = 1
CACHE_ENV_VAR = "ARNN_ZOO_CACHE"


def default_cache_dir() -> pathlib.Path:
  """`$ARNN_ZOO_CACHE` if set, else `~/.cache/arnn-zoo/ed`."""
  env = os.environ.get(CACHE_ENV_VAR)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path.home() / ".cache" / "arnn-zoo" / "ed"


def cache_key(hamiltonian: hamiltonians.SpinHalfHamiltonian,
              sector: float | None) -> dict[str, Any]:
  """The stable description that identifies a cached ground-state energy."""
  return {"version": _CACHE_VERSION, "hamiltonian": hamiltonian.description(),
          "sector": None if sector is None else float(sector)}


def _cache_path(cache_dir: pathlib.Path, key: dict[str, Any]) -> pathlib.Path:
  text = json.dumps(key, sort_keys=True, separators=(",", ":"))
  digest = hashlib.sha256(text.encode()).hexdigest()[:20]
  return cache_dir / f"{key['hamiltonian']['type']}-{digest}.json"


def _read_cache(path: pathlib.Path, key: dict[str, Any]) -> float | None:
  try:
    record = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  # The hash names the file; the stored key guards against collisions.
  if not isinstance(record, dict) or record.get("key") != key:
    return None
  energy = record.get("energy")
  return float(energy) if isinstance(energy, (int, float)) else None


def _write_cache(path: pathlib.Path, key: dict[str, Any], energy: float):
  """Writes atomically (temp file + os.replace); gives up quietly on OSError."""
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem,
                               suffix=".tmp")
    try:
      with os.fdopen(fd, "w") as f:
        json.dump({"key": key, "energy": energy}, f, sort_keys=True, indent=1)
      os.replace(tmp, path)
    except BaseException:
      os.unlink(tmp)
      raise
  except OSError:
    pass


def _lowest_eigenvalue(matrix) -> float:
  return _lowest(matrix, vector=False)[0]


def _lowest(matrix, vector: bool) -> tuple[float, np.ndarray | None]:
  """(the lowest eigenvalue, its normalized eigenvector or None)."""
  if matrix.shape[0] < _DENSE_BELOW:
    values, vectors = scipy.linalg.eigh(matrix.toarray())
    return float(values[0]), vectors[:, 0] if vector else None
  # A fixed start vector makes the result reproducible to the last digits.
  v0 = np.random.default_rng(0).standard_normal(matrix.shape[0])
  if not vector:
    (energy,) = scipy.sparse.linalg.eigsh(matrix, k=1, which="SA", v0=v0,
                                          return_eigenvectors=False)
    return float(energy), None
  values, vectors = scipy.sparse.linalg.eigsh(matrix, k=1, which="SA", v0=v0)
  return float(values[0]), vectors[:, 0] / np.linalg.norm(vectors[:, 0])


def ground_state(hamiltonian: hamiltonians.SpinHalfHamiltonian, *,
                 sector: float | None = None) -> tuple[float, np.ndarray]:
  """(the ground-state energy, the ground state [S], real and normalized)
  of a Hamiltonian on N <= MAX_ED_SITES sites, in the basis of
  `hamiltonian.to_sparse(sector=sector)` (`basis_rows`); not cached.

  Raises:
    ValueError: as `ground_state_energy`.
  """
  _check(hamiltonian, sector)
  return _lowest(hamiltonian.to_sparse(sector=sector), vector=True)


def basis_rows(states, sector: float | None = None) -> np.ndarray:
  """[B] the rows of `to_sparse(sector=sector)` that the spin-1/2
  configurations `states` [B, N] (values -1, +1) are.

  Raises:
    ValueError: a configuration outside the sector (total S^z = sector).
  """
  states = np.asarray(states)
  n = states.shape[1]
  bits = (states > 0).astype(np.int64) @ (1 << np.arange(n - 1, -1, -1))
  if sector is None:
    return bits
  basis = hamiltonians.sz_sector_states(n, sector)
  rows = np.minimum(np.searchsorted(basis, bits), len(basis) - 1)
  outside = basis[rows] != bits
  if outside.any():
    raise ValueError(f"states[{int(np.argmax(outside))}] is not in the "
                     f"sector of total S^z = {sector:g}")
  return rows


def _check(hamiltonian, sector) -> None:
  if not isinstance(hamiltonian, hamiltonians.SpinHalfHamiltonian):
    raise ValueError(
        f"hamiltonian must be a zoo.physics.hamiltonians Hamiltonian, "
        f"got {hamiltonian!r}")
  n = hamiltonian.n_sites
  if n > MAX_ED_SITES:
    raise ValueError(
        f"exact diagonalization supports N <= {MAX_ED_SITES} sites, got N={n} "
        f"({hamiltonian.lattice})")
  if sector is not None and not hamiltonian.terms().conserves_sz:
    raise ValueError(
        f"sector={sector!r} needs a Hamiltonian that conserves S^z, "
        f"got {hamiltonian!r}")


def ground_state_energy(hamiltonian: hamiltonians.SpinHalfHamiltonian, *,
                        sector: float | None = None,
                        cache: bool | str | os.PathLike = True) -> float:
  """Lowest eigenvalue of a Hamiltonian on N <= 20 sites.

  Args:
    hamiltonian: a `zoo.physics.hamiltonians` Hamiltonian.
    sector: None for the full space, or the total S^z to restrict to (e.g. 0,
      where the ground state of an antiferromagnet on an even number of sites
      lies); only for Hamiltonians that conserve S^z.
    cache: True for the default cache directory, a path for another one,
      False to neither read nor write a cache.

  Returns:
    The ground-state energy (of the sector, if one is given).
  """
  _check(hamiltonian, sector)
  if not isinstance(cache, (bool, str, os.PathLike)):
    raise ValueError(f"cache must be a bool or a directory, got {cache!r}")

  path = key = None
  if cache is not False:
    cache_dir = (default_cache_dir() if cache is True
                 else pathlib.Path(cache).expanduser())
    key = cache_key(hamiltonian, sector)
    path = _cache_path(cache_dir, key)
    energy = _read_cache(path, key)
    if energy is not None:
      return energy

  energy = _lowest_eigenvalue(hamiltonian.to_sparse(sector=sector))
  if path is not None:
    _write_cache(path, key, energy)
  return energy

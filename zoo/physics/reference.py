"""Published and exact ground-state energies to check variational results on.

The numbers live in `reference_energies.json` next to this module, whose
`_about` entry states the conventions; they match the Hamiltonians of
`zoo.physics.hamiltonians` with J = 1 (J1 = 1 for J1-J2). Models and their
parameters:

  tfim_chain:        N, h, bc
  heisenberg_chain:  N, bc
  heisenberg_square: L, J2, bc      (L x L sites)
  tfim_square:       L, h, bc

with bc = 'periodic' or 'open'.
"""

from __future__ import annotations

import importlib.resources
import json
import math
from typing import Any, NamedTuple

from zoo.physics import exact
from zoo.physics import hamiltonians

_DATA_FILE = "reference_energies.json"
# Entry keys that hold results rather than identify a system.
_RESULT_KEYS = frozenset({"E", "E_per_site", "error", "method", "note"})


class KnownEnergy(NamedTuple):
  """A ground-state energy to measure a variational one against.

  Attributes:
    energy: the total energy.
    method: 'ed', 'qmc' or 'dmrg'.
  """
  energy: float
  method: str


class Reference(NamedTuple):
  """A reference ground-state energy.

  Attributes:
    energy: total energy, or None where only the energy per site is quoted.
    energy_per_site: energy / N.
    error: one-sigma statistical error of the energy per site for 'qmc';
      None for 'ed' and 'dmrg' (exact or variational, rounded as printed).
    method: 'ed', 'qmc' or 'dmrg'.
    n_sites: N.
  """
  energy: float | None
  energy_per_site: float
  error: float | None
  method: str
  n_sites: int


def load_table() -> dict[str, Any]:
  """The whole JSON table, `_about` included."""
  text = importlib.resources.files(__package__).joinpath(
      _DATA_FILE).read_text(encoding="utf-8")
  return json.loads(text)


def models() -> list[str]:
  """Names of the models that have reference energies."""
  return sorted(k for k in load_table() if not k.startswith("_"))


def _same(a, b) -> bool:
  if isinstance(a, str) or isinstance(b, str):
    return a == b
  return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)


def _describe(entry: dict[str, Any]) -> str:
  return ", ".join(f"{k}={v!r}" for k, v in entry.items()
                   if k not in _RESULT_KEYS)


def reference_energy(model: str, **params) -> Reference:
  """The reference energy of `model` whose parameters match `params`.

  Parameters left out match anything, as long as a single entry matches.

  Example:
    reference_energy("heisenberg_square", L=4, J2=0.5, bc="periodic")

  Raises:
    KeyError: if `model` is unknown.
    ValueError: if a parameter name is unknown, or if no entry or several
      entries match; the message lists the entries of `model`.
  """
  table = load_table()
  if model.startswith("_") or model not in table:
    raise KeyError(f"model must be one of {models()}, got {model!r}")
  entries = table[model]
  names = sorted({k for e in entries for k in e} - _RESULT_KEYS)
  unknown = sorted(set(params) - set(names))
  if unknown:
    raise ValueError(
        f"unknown parameters {unknown} for model {model!r}; "
        f"its parameters are {names}")
  matches = [e for e in entries
             if all(k in e and _same(e[k], v) for k, v in params.items())]
  if len(matches) != 1:
    available = "\n  ".join(_describe(e) for e in entries)
    found = ("no entry matches" if not matches
             else f"{len(matches)} entries match")
    raise ValueError(
        f"{found} {params} in {model!r}; available:\n  {available}")
  (entry,) = matches
  n_sites = entry["N"] if "N" in entry else entry["L"] ** 2
  energy = entry.get("E")
  per_site = entry.get("E_per_site")
  if per_site is None:
    per_site = energy / n_sites
  return Reference(energy=energy, energy_per_site=per_site,
                   error=entry.get("error"), method=entry["method"],
                   n_sites=n_sites)


def reference_for(hamiltonian: hamiltonians.SpinHalfHamiltonian
                  ) -> Reference | None:
  """The reference energy of a Hamiltonian, or None if the table has none.

  The Marshall rotation does not change the spectrum, so it is ignored.
  """
  lattice = hamiltonian.lattice
  bc = "periodic" if lattice.pbc else "open"
  if lattice.ndim == 1:
    size = {"N": lattice.shape[0]}
  elif lattice.shape[0] == lattice.shape[1]:
    size = {"L": lattice.shape[0]}
  else:
    return None
  geometry = "chain" if lattice.ndim == 1 else "square"
  if isinstance(hamiltonian, hamiltonians.TransverseFieldIsing):
    if hamiltonian.J != 1:
      return None
    model, params = f"tfim_{geometry}", {"h": hamiltonian.h}
  elif isinstance(hamiltonian, (hamiltonians.Heisenberg, hamiltonians.J1J2)):
    if isinstance(hamiltonian, hamiltonians.J1J2):
      j1, j2 = hamiltonian.J1, hamiltonian.J2
    else:
      j1, j2 = hamiltonian.J, 0.0
    if j1 != 1:
      return None
    model = f"heisenberg_{geometry}"
    if geometry == "square":
      params = {"J2": j2}
    elif j2 == 0:
      params = {}
    else:
      return None
  else:
    return None
  try:
    return reference_energy(model, **size, **params, bc=bc)
  except (KeyError, ValueError):
    return None


def exact_or_reference(hamiltonian: hamiltonians.SpinHalfHamiltonian,
                       total: float | None = None) -> KnownEnergy | None:
  """The ground-state energy of `hamiltonian`, or None if none is known.

  Exact diagonalization for N <= `exact.MAX_ED_SITES` (cached on disk),
  else the reference table.

  Args:
    hamiltonian: a `zoo.physics.hamiltonians` Hamiltonian.
    total: None, or the sector a model is restricted to, as
      `zoo.Hilbert.total`: the sum of sigma_z, 2 S^z. ED then diagonalizes
      that sector. Without one, ED of an S^z-conserving Hamiltonian on an
      even number of sites uses the S^z = 0 sector, which holds the ground
      state of these antiferromagnets and is much smaller. The table holds
      ground states only: it answers for total None or 0.
  """
  if hamiltonian.n_sites <= exact.MAX_ED_SITES:
    sector = (0 if hamiltonian.terms().conserves_sz
              and hamiltonian.n_sites % 2 == 0 else None)
    if total is not None:
      sector = total / 2
    return KnownEnergy(
        exact.ground_state_energy(hamiltonian, sector=sector), "ed")
  if total not in (None, 0):
    return None
  ref = reference_for(hamiltonian)
  if ref is None:
    return None
  energy = ref.energy if ref.energy is not None else (
      ref.energy_per_site * ref.n_sites)
  return KnownEnergy(float(energy), ref.method)

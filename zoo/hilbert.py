"""Hilbert spaces: homogeneous local states on a lattice of sites.

A configuration is an array of local-state *values* (not indices), one per
site, in raster order for 2D lattices: site = row * Ly + col for a lattice of
shape (Lx, Ly), i.e. Lx rows of Ly sites.

A space may be constrained to the configurations whose local-state values
sum to a given `total`, e.g. total = 0 for spin-1/2 sites with sigma_z values
(-1, +1) is the S^z = 0 sector, or total = n the n-particle sector of Fock
sites. Autoregressive models on such a space put zero weight on every local
state that would make the total unreachable (see `zoo.models.arnn`).

Glossary of shapes:
  B: batch, N: sites (= prod(shape)), K: local states per site.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from zoo import checks

# Enumerating all states is meant for exact checks on small systems.
MAX_ENUMERATED_STATES = 2**24


@dataclasses.dataclass(frozen=True)
class Hilbert:
  """Sites that all carry the same finite set of local states.

  Attributes:
    local_states: the values a site can take, strictly increasing.
    shape: the lattice shape, `(N,)` for a chain or `(Lx, Ly)` for a
      rectangular lattice of Lx rows and Ly columns.
    total: None, or the sum of the local-state values that every
      configuration has; the local states must then be equally spaced, and
      the total one that N sites can reach.
  """

  local_states: tuple[float, ...]
  shape: tuple[int, ...]
  total: float | None = None

  def __init__(self, local_states: Sequence[float], shape: int | Sequence[int],
               *, n_sites: int | None = None, total: float | None = None):
    if not isinstance(local_states, (Sequence, np.ndarray)) or not all(
        map(checks.is_number, local_states)) or len(local_states) < 2:
      raise checks.FieldError("local_states", local_states,
                              "must be at least 2 numbers")
    local_states = tuple(float(v) for v in local_states)
    if any(b <= a for a, b in zip(local_states, local_states[1:])):
      raise checks.FieldError("local_states", local_states,
                              "must be strictly increasing")
    shape = (shape,) if checks.is_int(shape) else shape
    if not isinstance(shape, (Sequence, np.ndarray)) or len(shape) not in (1, 2) or not all(
        checks.is_int(n) and n > 0 for n in shape):
      raise checks.FieldError("shape", shape,
                              "must be (N,) or (Lx, Ly) with positive integers")
    shape = tuple(int(n) for n in shape)
    if n_sites is not None and n_sites != math.prod(shape):
      raise checks.FieldError(
          "n_sites", n_sites, f"does not match the lattice shape {shape} "
          f"({math.prod(shape)} sites)")
    object.__setattr__(self, "local_states", local_states)
    object.__setattr__(self, "shape", shape)
    object.__setattr__(self, "total", None if total is None else
                       _check_total(total, local_states, math.prod(shape)))

  @property
  def size(self) -> int:
    """Number of sites N."""
    return math.prod(self.shape)

  @property
  def local_size(self) -> int:
    """Number of local states K."""
    return len(self.local_states)

  @property
  def step(self) -> float:
    """The spacing of equally spaced local states (constrained spaces)."""
    return self.local_states[1] - self.local_states[0]

  @property
  def n_states(self) -> int:
    """Dimension of the space: K**N, or the configurations with the total."""
    if self.total is None:
      return self.local_size**self.size
    # The total is N * min + `steps` steps: count the ways to share the steps
    # among the sites, 0 to K - 1 each, adding one site at a time.
    steps = round((self.total - self.size * self.local_states[0]) / self.step)
    ways = [1] + [0] * steps  # ways[j]: j steps over the sites so far
    for _ in range(self.size):
      ways = [sum(ways[max(0, j - self.local_size + 1):j + 1])
              for j in range(steps + 1)]
    return ways[steps]

  def nearest_total(self, total: float) -> float:
    """The total these sites can reach nearest to `total` (the lower on a
    tie); the local states must be equally spaced."""
    low, high = (self.size * v for v in (self.local_states[0],
                                         self.local_states[-1]))
    steps = math.floor((min(max(total, low), high) - low) / self.step
                       + 0.5 - 1e-9)
    return low + steps * self.step

  def local_states_array(self, dtype=jnp.float64) -> jnp.ndarray:  # [K]
    return jnp.asarray(self.local_states, dtype=dtype)

  def states_to_indices(self, x: jnp.ndarray) -> jnp.ndarray:
    """Local-state values [..., N] -> local indices in [0, K), int32."""
    values = jnp.asarray(self.local_states, dtype=jnp.result_type(x, float))
    # Nearest value rather than exact equality: robust to float round-off.
    return jnp.argmin(jnp.abs(x[..., None] - values), axis=-1).astype(jnp.int32)

  def indices_to_states(self, i: jnp.ndarray, dtype=jnp.float64) -> jnp.ndarray:
    """Local indices [..., N] -> local-state values."""
    return self.local_states_array(dtype)[i]

  def contains(self, x) -> np.ndarray:
    """Whether each configuration [..., N] lies in this space (host-side)."""
    x = np.asarray(x)
    ok = np.isin(x, np.asarray(self.local_states, dtype=x.dtype))
    ok = ok.all(axis=-1) & (x.shape[-1] == self.size)
    if self.total is not None:
      ok &= np.abs(x.sum(axis=-1) - self.total) < self.step / 2
    return ok

  def all_states(self, dtype=jnp.float64) -> jnp.ndarray:  # [n_states, N]
    """Every configuration, in lexicographic order of local indices."""
    unconstrained = self.local_size**self.size
    if unconstrained > MAX_ENUMERATED_STATES:
      raise ValueError(
          f"all_states() would enumerate {self.local_size}**{self.size} = "
          f"{unconstrained} states; the limit is {MAX_ENUMERATED_STATES}")
    idx = np.array(list(itertools.product(range(self.local_size),
                                          repeat=self.size)), dtype=np.int32)
    if self.total is not None:
      idx = idx[self.contains(np.asarray(self.local_states)[idx])]
    return self.indices_to_states(jnp.asarray(idx), dtype)

  def __repr__(self) -> str:
    total = "" if self.total is None else f", total={self.total}"
    return (f"Hilbert(local_states={self.local_states}, shape={self.shape}"
            f"{total})")


def _check_total(total, local_states: tuple[float, ...], n_sites: int) -> float:
  """The total as a float, if N sites of equally spaced states can reach it."""
  if not checks.is_number(total):
    raise checks.FieldError("total", total, "must be a number or None")
  steps = np.diff(local_states)
  if not np.allclose(steps, steps[0], rtol=1e-12, atol=0):
    raise checks.FieldError(
        "total", total,
        f"needs equally spaced local states, got {local_states}")
  k = (total - n_sites * local_states[0]) / steps[0]
  if not (abs(k - round(k)) < 1e-9 and 0 <= round(k) <= n_sites * (len(local_states) - 1)):
    raise checks.FieldError(
        "total", total,
        f"is not a sum of {n_sites} local states from {local_states} "
        f"(reachable: {n_sites * local_states[0]:g} to "
        f"{n_sites * local_states[-1]:g} in steps of {steps[0]:g})")
  return float(total)


def spin_half(shape: int | Sequence[int], total_sz: float | None = None
              ) -> Hilbert:
  """Spin-1/2 sites with sigma_z values (-1, +1); total_sz: None, or the
  sector of total S^z = sum sigma_z / 2 (0: as many up as down)."""
  return _spin((-1.0, 1.0), shape, total_sz, values_per_sz=2)


def spin_one(shape: int | Sequence[int], total_sz: float | None = None
             ) -> Hilbert:
  """Spin-1 sites with S_z values (-1, 0, +1); total_sz: None or a sector."""
  return _spin((-1.0, 0.0, 1.0), shape, total_sz, values_per_sz=1)


def _spin(local_states, shape, total_sz, values_per_sz: int) -> Hilbert:
  """Spin sites, in the sector total_sz (the sum of values / values_per_sz)."""
  if total_sz is None:
    return Hilbert(local_states, shape)
  if not checks.is_number(total_sz):
    raise checks.FieldError("total_sz", total_sz, "must be a number or None")
  space = Hilbert(local_states, shape)
  try:
    return Hilbert(local_states, shape, total=float(total_sz) * values_per_sz)
  except checks.FieldError:
    n, top = space.size, local_states[-1] / values_per_sz
    raise checks.FieldError(
        "total_sz", total_sz,
        f"is not the total S^z of any configuration of {n} sites "
        f"(-{n * top:g} to {n * top:g} in steps of "
        f"{space.step / values_per_sz:g})") from None


def fock(n_max: int, shape: int | Sequence[int],
         n_particles: int | None = None) -> Hilbert:
  """Bosonic sites with occupations 0..n_max; n_particles: None or the
  total occupation."""
  n_max = checks.positive_int("n_max", n_max)
  if n_particles is not None:
    checks.non_negative_int("n_particles", n_particles)
  return Hilbert(tuple(range(n_max + 1)), shape, total=n_particles)


# The kinds of local states a config may name (`hilbert.kind`).
KINDS = ("spin_half", "spin_one", "fock", "custom")


def of_kind(kind: str, shape: int | Sequence[int], *, n_max: int | None = None,
            local_states: Sequence[float] | None = None,
            total: float | None = None) -> Hilbert:
  """The space of a kind of KINDS, as a config names it.

  Args:
    kind: spin_half (sigma_z values -1, +1), spin_one (-1, 0, +1), fock
      (occupations 0 .. n_max) or custom (`local_states`).
    shape: (N,) or (Lx, Ly).
    n_max: fock only, the highest occupation.
    local_states: custom only, the values.
    total: None, or the sum of the local-state values of every
      configuration: spin_half 2 S^z, spin_one S^z, fock the particles.
  """
  checks.one_of("kind", kind, KINDS)
  if kind != "fock" and n_max is not None:
    raise checks.FieldError("n_max", n_max,
                            f"applies only to kind='fock' (kind={kind!r})")
  if kind != "custom" and local_states is not None:
    raise checks.FieldError("local_states", local_states,
                            f"applies only to kind='custom' (kind={kind!r})")
  if kind == "spin_half":
    values = (-1.0, 1.0)
  elif kind == "spin_one":
    values = (-1.0, 0.0, 1.0)
  elif kind == "fock":
    values = tuple(range(checks.positive_int("n_max", n_max) + 1))
  elif local_states is None:
    raise checks.FieldError("local_states", None,
                            "is required for kind='custom'")
  else:
    values = local_states
  return Hilbert(values, shape, total=total)

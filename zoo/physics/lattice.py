"""Chains and rectangular lattices: sites, bonds and sublattices.

Sites are numbered in raster order, as in `zoo.hilbert`: on a lattice of
shape (Lx, Ly), i.e. Lx rows of Ly sites, site = row * Ly + col.

Glossary of shapes:
  N: sites (= prod(shape)), E: bonds of one order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numpy as np

from zoo import checks

# Displacements (in lattice units) that define the bonds of each order.
# Order 2 is the next-nearest neighbour: two sites along a chain, the
# diagonals of a plaquette on a rectangle.
_DISPLACEMENTS = {
    1: {1: ((1,),), 2: ((1, 0), (0, 1))},
    2: {1: ((2,),), 2: ((1, 1), (1, -1))},
}


@dataclasses.dataclass(frozen=True)
class Lattice:
  """A chain (N,) or a rectangle (Lx, Ly), periodic or open in every direction.

  Attributes:
    shape: `(N,)` for a chain, `(Lx, Ly)` for Lx rows of Ly sites.
    pbc: periodic (True) or open (False) boundary conditions.
  """

  shape: tuple[int, ...]
  pbc: bool = True

  def __post_init__(self):
    shape = self.shape
    shape = (shape,) if checks.is_int(shape) else shape
    if not isinstance(shape, (tuple, list, np.ndarray)) or len(shape) not in (
        1, 2) or not all(checks.is_int(n) and n > 0 for n in shape):
      raise checks.FieldError(
          "shape", self.shape, "must be (N,) or (Lx, Ly) with positive integers")
    shape = tuple(int(n) for n in shape)
    if len(shape) == 1 and shape[0] < 2:
      raise checks.FieldError("shape", shape,
                              "must have at least 2 sites (a chain)")
    if len(shape) == 2 and min(shape) < 2:
      # A single row would make the diagonals wrap onto its own chain bonds.
      raise checks.FieldError(
          "shape", shape, "must have at least 2 rows and 2 columns (a "
          "rectangle); use a chain for a single row")
    object.__setattr__(self, "shape", shape)
    object.__setattr__(self, "pbc", checks.boolean("pbc", self.pbc))

  @property
  def n_sites(self) -> int:
    """Number of sites N."""
    return math.prod(self.shape)

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def coordinates(self) -> np.ndarray:  # [N, ndim]
    """Integer coordinates of each site, in site order."""
    return np.array(list(itertools.product(*(range(n) for n in self.shape))),
                    dtype=np.int64)

  def bonds(self, order: int = 1) -> np.ndarray:  # [E, 2]
    """Pairs of sites at distance `order`, each pair once.

    Every pair is listed as (i, j) with i < j, in order of first appearance.
    On small periodic lattices two displacements can reach the same pair (a
    periodic chain of 2 sites, a rectangle with 2 rows) or a site itself
    (next-nearest neighbours on a periodic chain of 2 sites): such bonds are
    kept once and self-bonds are dropped, so every coupling is counted once.
    Pairs that are already bonds of a lower order are dropped too: on a
    periodic chain of 3 sites the second neighbour one way is the first
    neighbour the other way, so that chain has no order-2 bonds.

    Args:
      order: 1 for nearest neighbours, 2 for next-nearest neighbours.

    Returns:
      int64 array of shape [E, 2].
    """
    checks.one_of("order", order, sorted(_DISPLACEMENTS))
    extent = np.array(self.shape)
    coords = self.coordinates()
    seen = set()
    for lower in range(1, order):
      seen.update(map(tuple, self.bonds(lower).tolist()))
    pairs = []
    for site, coord in enumerate(coords):
      for step in _DISPLACEMENTS[order][self.ndim]:
        other = coord + np.array(step)
        if self.pbc:
          other = other % extent
        elif np.any(other < 0) or np.any(other >= extent):
          continue
        neighbour = int(np.ravel_multi_index(tuple(other), self.shape))
        pair = (min(site, neighbour), max(site, neighbour))
        if pair[0] != pair[1] and pair not in seen:
          seen.add(pair)
          pairs.append(pair)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)

  @property
  def sublattice(self) -> np.ndarray:  # [N]
    """Checkerboard parity (sum of coordinates mod 2) of each site, 0 or 1."""
    return (self.coordinates().sum(axis=-1) % 2).astype(np.int64)

  @property
  def is_bipartite(self) -> bool:
    """Whether every nearest-neighbour bond joins the two sublattices.

    False for periodic lattices with an odd length of 3 or more.
    """
    sub = self.sublattice
    bonds = self.bonds(1)
    return bool(np.all(sub[bonds[:, 0]] != sub[bonds[:, 1]]))

  def __repr__(self) -> str:
    return f"Lattice(shape={self.shape}, pbc={self.pbc})"


def chain(n: int, pbc: bool = True) -> Lattice:
  """A chain of n sites."""
  if not checks.is_int(n) or n < 2:
    raise checks.FieldError("n", n, "must be an integer >= 2")
  return Lattice((int(n),), pbc)


def square(lx: int, ly: int | None = None, pbc: bool = True) -> Lattice:
  """A rectangle of lx rows and ly columns (ly = lx when omitted)."""
  ly = lx if ly is None else ly
  for name, value in (("lx", lx), ("ly", ly)):
    if not checks.is_int(value) or value < 2:
      raise checks.FieldError(name, value, "must be an integer >= 2")
  return Lattice((int(lx), int(ly)), pbc)


"""Hilbert spaces: homogeneous local states on a lattice of sites.

A configuration is an array of local-state *values* (not indices), one per
site, in raster order for 2D lattices: site = row * Ly + col for a lattice of
shape (Lx, Ly), i.e. Lx rows of Ly sites.

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

# Enumerating all states is meant for exact checks on small systems.
MAX_ENUMERATED_STATES = 2**24


@dataclasses.dataclass(frozen=True)
class Hilbert:
  """Sites that all carry the same finite set of local states.

  Attributes:
    local_states: the values a site can take, strictly increasing.
    shape: the lattice shape, `(N,)` for a chain or `(Lx, Ly)` for a
      rectangular lattice of Lx rows and Ly columns.
  """

  local_states: tuple[float, ...]
  shape: tuple[int, ...]

  def __init__(self, local_states: Sequence[float], shape: int | Sequence[int],
               *, n_sites: int | None = None):
    local_states = tuple(float(v) for v in local_states)
    if len(local_states) < 2:
      raise ValueError(
          f"local_states must hold at least 2 values, got {local_states}")
    if any(b <= a for a, b in zip(local_states, local_states[1:])):
      raise ValueError(
          f"local_states must be strictly increasing, got {local_states}")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(shape) not in (1, 2) or not all(
        isinstance(n, (int, np.integer)) and n > 0 for n in shape):
      raise ValueError(
          f"shape must be (N,) or (Lx, Ly) with positive integers, got {shape}")
    shape = tuple(int(n) for n in shape)
    if n_sites is not None and n_sites != math.prod(shape):
      raise ValueError(
          f"n_sites={n_sites} does not match the lattice shape {shape} "
          f"({math.prod(shape)} sites)")
    object.__setattr__(self, "local_states", local_states)
    object.__setattr__(self, "shape", shape)

  @property
  def size(self) -> int:
    """Number of sites N."""
    return math.prod(self.shape)

  @property
  def local_size(self) -> int:
    """Number of local states K."""
    return len(self.local_states)

  @property
  def n_states(self) -> int:
    """Dimension of the space, K**N."""
    return self.local_size**self.size

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
    return ok.all(axis=-1) & (x.shape[-1] == self.size)

  def all_states(self, dtype=jnp.float64) -> jnp.ndarray:  # [K**N, N]
    """Every configuration, in lexicographic order of local indices."""
    if self.n_states > MAX_ENUMERATED_STATES:
      raise ValueError(
          f"all_states() would enumerate {self.local_size}**{self.size} = "
          f"{self.n_states} states; the limit is {MAX_ENUMERATED_STATES}")
    idx = np.array(list(itertools.product(range(self.local_size),
                                          repeat=self.size)), dtype=np.int32)
    return self.indices_to_states(jnp.asarray(idx), dtype)

  def __repr__(self) -> str:
    return f"Hilbert(local_states={self.local_states}, shape={self.shape})"


def spin_half(shape: int | Sequence[int]) -> Hilbert:
  """Spin-1/2 sites with sigma_z values (-1, +1)."""
  return Hilbert((-1.0, 1.0), shape)


def spin_one(shape: int | Sequence[int]) -> Hilbert:
  """Spin-1 sites with S_z values (-1, 0, +1)."""
  return Hilbert((-1.0, 0.0, 1.0), shape)


def fock(n_max: int, shape: int | Sequence[int]) -> Hilbert:
  """Bosonic sites with occupations 0..n_max."""
  if not isinstance(n_max, (int, np.integer)) or n_max < 1:
    raise ValueError(f"n_max must be a positive integer, got {n_max!r}")
  return Hilbert(tuple(range(n_max + 1)), shape)

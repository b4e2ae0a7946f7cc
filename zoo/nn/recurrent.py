"""Recurrent layers on lattices: a GRU whose past is its generated neighbours.

The cell at a site reads the hidden states (and, in the first layer, the
local states) of its lattice neighbours that are already generated, as in
the 2D recurrent wavefunctions of Hibat-Allah et al. 2020,
arXiv:2002.02973, with the wrap-around neighbours of a periodic lattice
(Moss et al. 2025, arXiv:2502.17144). Sites are generated in snake order
(even rows left to right, odd rows right to left): every earlier site then
reaches the current one through the neighbours' states, with no blind spot.
A chain is one row.

The neighbours are named relative to the direction of travel: `prev` (the
site just before, in the row), `next` (the other side of the row: present
only across a periodic boundary, at the end of a row), `above` (the row
before) and `below` (the row after: present only across a periodic
boundary, from the last row). `next` and `below` exist only with periodic
boundaries and `above`/`below` only on 2D lattices, so the parameter shapes
depend on the dimension and boundary but never on the lattice size: a
layer trained on L x L runs on L' x L'.

One step of a layer (feature-major, [F, B], batch last as in
`zoo.nn.masked`):

  n     = [h_d for each direction d]        the neighbours' states, 0 where
                                            absent                  [D F, B]
  prev  = W_m n                             their merge: the GRU's previous
                                            state                   [F, B]
  u     = [own input; n]                    own input: the neighbours'
                                            one-hot local states (first
                                            layer) or the layer below's state
  z, r  = sigmoid(W_i u + W_h prev + b)     update and reset gates
  a     = tanh(W_i' u + W_h' (r * prev) + b')
  h     = (1 - z) * prev + z * a

i.e. a GRU (hk.GRU's equations) whose previous state is a learned merge of
the neighbours' states; written out here because its cached pass keeps the
batch last (see `zoo.nn.masked`) and reads several states. With one
neighbour and W_m = 1 it is hk.GRU.

Both faces run the same step: the full pass scans it over the sites, the
cached pass (`update_site`) takes one step with the states in Haiku state:
a ring of the last R steps' states and, on periodic lattices, the states
of the first sites (which the last row and the end of a chain read back).

Glossary of shapes:
  B: batch, N: sites, T: steps (= N), F: hidden features, D: neighbour
  directions, K: local states, R: ring length, W: row width.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.nn import initializers

DIRECTIONS_1D = ("prev", "next")
DIRECTIONS_2D = ("prev", "next", "above", "below")


@dataclasses.dataclass(frozen=True)
class Neighbourhood:
  """The generation order on a lattice and where each step reads from.

  Attributes:
    shape: (N,) or (H, W).
    pbc: periodic boundaries.
    directions: the names of the D directions (see the module docstring).
    order: [T] the site of each step (snake order).
    sites: [T, D] the neighbour's site (0 where absent).
    present: [T, D] the neighbour exists and is generated earlier.
    ring_slot: [T, D] where its state is in the ring, (t - steps back) % R.
    from_first: [T, D] its state is in the buffer of the first steps.
    first_slot: [T, D] its index there (its step).
    ring: R, steps of states the ring keeps.
    first: steps whose states are also kept apart (0 without pbc).
  """
  shape: tuple[int, ...]
  pbc: bool
  directions: tuple[str, ...]
  order: np.ndarray
  sites: np.ndarray
  present: np.ndarray
  ring_slot: np.ndarray
  from_first: np.ndarray
  first_slot: np.ndarray
  ring: int
  first: int

  def __hash__(self):
    return hash((self.shape, self.pbc))

  def __eq__(self, other):
    return (isinstance(other, Neighbourhood)
            and (self.shape, self.pbc) == (other.shape, other.pbc))


def snake_order(shape: tuple[int, ...]) -> np.ndarray:
  """Sites (raster numbering) in snake order: even rows left to right, odd
  rows right to left."""
  height, width = (1,) + tuple(shape) if len(shape) == 1 else tuple(shape)
  grid = np.arange(height * width).reshape(height, width)
  grid[1::2] = grid[1::2, ::-1]
  return grid.reshape(-1)


def directions(ndim: int, pbc: bool) -> tuple[str, ...]:
  """The directions a layer on a lattice of `ndim` dimensions reads."""
  names = DIRECTIONS_1D if ndim == 1 else DIRECTIONS_2D
  return tuple(d for d in names if pbc or d in ("prev", "above"))


def neighbourhood(shape, pbc: bool) -> Neighbourhood:
  """The snake order on a chain (N,) or a lattice (H, W) and, for every step,
  its neighbours in the layer's directions."""
  shape = tuple(shape)
  height, width = (1,) + shape if len(shape) == 1 else shape
  names = directions(len(shape), pbc)
  order = snake_order(shape)
  n = height * width
  step_of = np.empty(n, np.int64)
  step_of[order] = np.arange(n)
  rows, cols = np.divmod(order, width)
  # +1 columns in the direction of travel: right on even rows.
  travel = np.where(rows % 2 == 0, 1, -1)
  offsets = {"prev": (0, -travel), "next": (0, travel),
             "above": (-1, 0), "below": (1, 0)}
  sites = np.zeros((n, len(names)), np.int64)
  present = np.zeros((n, len(names)), bool)
  for d, name in enumerate(names):
    dr, dc = offsets[name]
    r, c = rows + dr, cols + dc
    inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    if pbc:
      inside = np.ones(n, bool)
      r, c = r % height, c % width
    site = np.where(inside, r * width + c, 0)
    # Present: a different site, generated earlier (a wrap onto the site
    # itself, on a side of length 1, is no neighbour).
    present[:, d] = inside & (step_of[site] < np.arange(n)) & (
        site != order)
    sites[:, d] = np.where(present[:, d], site, 0)
  back = np.where(present, np.arange(n)[:, None] - step_of[sites], 0)
  # The ring keeps two rows of states in 2D, one state on a chain; reads
  # further back (across a periodic boundary) go to the first steps' buffer.
  ring = min(n, 2 * width if height > 1 else 1)
  from_first = present & (back > ring)
  first_slot = np.where(from_first, step_of[sites], 0)
  first = int(first_slot.max()) + 1 if from_first.any() else 0
  ring_slot = (np.arange(n)[:, None] - back) % ring
  return Neighbourhood(shape=shape, pbc=bool(pbc), directions=names,
                       order=order, sites=sites, present=present,
                       ring_slot=ring_slot, from_first=from_first,
                       first_slot=first_slot, ring=ring, first=first)


class LatticeGRU(hk.Module):
  """One GRU layer over a lattice's generation order (module docstring).

  Params: w_i [3F, I] (I: own input + D F), w_h [3F, F], b [3F] (if
  use_bias), w_m [F, D F] (the merge; starts as the mean of the present
  neighbours' states, identity / D per direction).
  """

  def __init__(self, neighbours: Neighbourhood, features: int, *,
               use_bias: bool = True, param_dtype: Any = jnp.float64,
               precision: jax.lax.Precision | None = None,
               kernel_init: initializers.Initializer | None = None,
               name: str | None = None):
    super().__init__(name=name)
    self.neighbours = neighbours
    self.features = checks.positive_int("features", features)
    self.use_bias = use_bias
    self.param_dtype = param_dtype
    self.precision = precision
    self.kernel_init = kernel_init

  @property
  def directions(self) -> int:
    return len(self.neighbours.directions)

  def weights(self, in_features: int) -> dict[str, jax.Array]:
    """The layer's parameters, for `step`."""
    f, d = self.features, self.directions
    init = initializers.unmasked(self.kernel_init or initializers.lecun_normal(
        in_axis=-1, out_axis=-2))
    dtype = self.param_dtype
    weights = dict(
        w_i=hk.get_parameter("w_i", (3 * f, in_features + d * f), dtype,
                             init=init),
        w_h=hk.get_parameter("w_h", (3 * f, f), dtype, init=init),
        w_m=hk.get_parameter(
            "w_m", (f, d * f), dtype,
            init=lambda shape, dtype: jnp.tile(jnp.eye(f, dtype=dtype) / d,
                                               (1, d))))
    if self.use_bias:
      weights["b"] = hk.get_parameter("b", (3 * f,), dtype, init=jnp.zeros)
    return weights

  def step(self, weights, own: jax.Array, neighbours: jax.Array) -> jax.Array:
    """One step: own input [I, B], neighbour states [D F, B] -> h [F, B]."""
    f = self.features
    dot = lambda a, b: jnp.dot(a, b, precision=self.precision)
    prev = dot(weights["w_m"], neighbours)  # [F, B]
    u = jnp.concatenate([own.astype(prev.dtype), neighbours])  # [I + D F, B]
    gates = dot(weights["w_i"], u)  # [3F, B]
    if self.use_bias:
      gates = gates + weights["b"][:, None]
    recurrent = dot(weights["w_h"][:2 * f], prev)
    z = jax.nn.sigmoid(gates[:f] + recurrent[:f])
    r = jax.nn.sigmoid(gates[f:2 * f] + recurrent[f:])
    a = jnp.tanh(gates[2 * f:] + dot(weights["w_h"][2 * f:], r * prev))
    return prev + z * (a - prev)

  def gather(self, ring: jax.Array, first: jax.Array | None,
             t: jax.Array) -> jax.Array:
    """The neighbours' states at step t from the buffers: [D F, B]."""
    nb = self.neighbours
    present = jnp.asarray(nb.present)[t]  # [D]
    states = ring[jnp.asarray(nb.ring_slot)[t]]  # [D, F, B]
    if first is not None:
      states = jnp.where(jnp.asarray(nb.from_first)[t][:, None, None],
                         first[jnp.asarray(nb.first_slot)[t]], states)
    states = jnp.where(present[:, None, None], states, 0)
    return states.reshape(-1, states.shape[-1])

  def empty_buffers(self, batch_size: int):
    """(ring [R, F, B], first [F0, F, B] or None), zeros."""
    nb = self.neighbours
    ring = jnp.zeros((nb.ring, self.features, batch_size), self.param_dtype)
    first = None if not nb.first else jnp.zeros(
        (nb.first, self.features, batch_size), self.param_dtype)
    return ring, first

  def store(self, ring, first, h: jax.Array, t: jax.Array):
    """The buffers with the state of step t written."""
    nb = self.neighbours
    ring = jax.lax.dynamic_update_index_in_dim(ring, h, t % nb.ring, axis=0)
    if first is not None:
      slot = jnp.minimum(t, nb.first - 1)
      first = jnp.where(t < nb.first, jax.lax.dynamic_update_index_in_dim(
          first, h, slot, axis=0), first)
    return ring, first

  def init_cache(self, batch_size: int) -> None:
    ring, first = self.empty_buffers(batch_size)
    hk.set_state("ring", ring)
    if first is not None:
      hk.set_state("first", first)

  def update_site(self, own: jax.Array, t: jax.Array,
                  in_features: int) -> jax.Array:
    """The cached pass: own input [I, B] at step t -> h [F, B]; the states
    of the steps before t are in the cache."""
    ring = hk.get_state("ring")
    first = hk.get_state("first") if self.neighbours.first else None
    h = self.step(self.weights(in_features), own,
                  self.gather(ring, first, t))
    ring, first = self.store(ring, first, h, t)
    hk.set_state("ring", ring)
    if first is not None:
      hk.set_state("first", first)
    return h

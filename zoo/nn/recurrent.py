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
`zoo.nn.masked`), the 2D GRU of Hibat-Allah et al. 2020:

  n     = [h_d for each direction d]        the neighbours' states, 0 where
                                            absent                  [D F, B]
  v     = [own input; n]                    own input: the neighbours'
                                            one-hot local states (first
                                            layer) or the layer below's state
  a     = tanh(W_a v + b_a)                 the candidate state
  z     = sigmoid(W_z v + b_z)              the update gate
  h     = z * a + (1 - z) * W_m n           W_m n: the neighbours' merged
                                            state, where the GRU keeps its
                                            memory

i.e. a GRU without a reset gate whose previous state is a learned merge of
the neighbours' states; written out (not hk.GRU) because it reads several
states and its cached pass keeps the batch last. Its linear outputs
[W_a v + b_a; W_z v + b_z; W_m n] are where SR's probe reads each sample's
gradient (`probed`, `gradient_rule`: the sum over steps of input x
cotangent, `zoo.nn.gradient_rules`).

Both faces run the same step: the full pass (`__call__`, a layer's own
inputs at every step) scans it over the sites, with the own inputs'
products taken for all steps at once before the scan; the cached pass
(`update_site`) takes one step with the states in Haiku state, one buffer
of slots: a ring of the last R steps' states, on periodic
lattices the states of the first steps (which the last row and the end of
a chain read back), a slot that stays zero (what an absent neighbour reads)
and one that is written and never read. Every step reads its neighbours
with one gather from a table of slots and writes two slots, so nothing is
masked or concatenated on the way.

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
from zoo.nn import gradient_rules
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
    ring: R, steps of states the ring keeps (slots 0 .. R - 1; step t in
      slot t % R).
    first: F0, the first steps whose states are kept apart too (slots R ..
      R + F0 - 1; 0 without periodic boundaries).
    slots: R + F0 + 2: the ring, the first steps, the zero slot and the
      trash slot.
    read_slot: [T, D] the slot of the neighbour's state (the zero slot where
      absent).
    keep_slot: [T] where step t's state goes besides the ring: its slot
      among the first steps, or the trash slot.
    read_step: [T, D] the step of the neighbour's state, T where absent:
      where a history of every step's states [T + 1, F, B] (its last row
      zero) holds it (`LatticeGRU.restart_step`).
  """
  shape: tuple[int, ...]
  pbc: bool
  directions: tuple[str, ...]
  order: np.ndarray
  sites: np.ndarray
  present: np.ndarray
  ring: int
  first: int
  read_slot: np.ndarray
  keep_slot: np.ndarray
  read_step: np.ndarray

  @property
  def slots(self) -> int:
    return self.ring + self.first + 2

  @property
  def zero_slot(self) -> int:
    return self.ring + self.first

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
  first = int(step_of[sites][from_first].max()) + 1 if from_first.any() else 0
  zero, trash = ring + first, ring + first + 1
  steps = np.arange(n)[:, None]
  read_slot = np.where(from_first, ring + step_of[sites],
                       (steps - back) % ring)
  read_slot = np.where(present, read_slot, zero)
  keep_slot = np.where(np.arange(n) < first, ring + np.arange(n), trash)
  read_step = np.where(present, step_of[sites], n)
  return Neighbourhood(shape=shape, pbc=bool(pbc), directions=names,
                       order=order, sites=sites, present=present, ring=ring,
                       first=first, read_slot=read_slot, keep_slot=keep_slot,
                       read_step=read_step)


class LatticeGRU(hk.Module):
  """One GRU layer over a lattice's generation order (module docstring).

  Params: w_i [2F, I + D F] (I: own input; rows: a, then z), b [2F] (if
  use_bias), w_m [F, D F] (the merge; starts as the mean of the
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
        w_i=hk.get_parameter("w_i", (2 * f, in_features + d * f), dtype,
                             init=init),
        w_m=hk.get_parameter(
            "w_m", (f, d * f), dtype,
            init=lambda shape, dtype: jnp.tile(jnp.eye(f, dtype=dtype) / d,
                                               (1, d))))
    if self.use_bias:
      weights["b"] = hk.get_parameter("b", (2 * f,), dtype, init=jnp.zeros)
    return weights

  def _own_part(self, weights, own: jax.Array) -> jax.Array:
    """What the own input adds to the linear outputs: [..., I, B] ->
    [..., 3F, B], the gates' rows W_i[:, :I] own + b, the merge's zero."""
    f, inputs = self.features, own.shape[-2]
    gates = jnp.einsum("oi,...ib->...ob", weights["w_i"][:, :inputs],
                       own.astype(self.param_dtype),
                       precision=self.precision)
    if self.use_bias:
      gates = gates + weights["b"][:, None]
    zeros = jnp.zeros(gates.shape[:-2] + (f,) + gates.shape[-1:], gates.dtype)
    return jnp.concatenate([gates, zeros], axis=-2)

  def _from_neighbours(self, weights, inputs: int) -> jax.Array:
    """The neighbours feed the gates and the merge: [3F, D F], one product."""
    return jnp.concatenate([weights["w_i"][:, inputs:], weights["w_m"]])

  def _cell(self, linear: jax.Array) -> jax.Array:
    """The linear outputs [3F, B] (candidate and update gates, merge) -> h."""
    f = self.features
    a, z = jnp.tanh(linear[:f]), jax.nn.sigmoid(linear[f:2 * f])
    merged = linear[2 * f:]
    return merged + z * (a - merged)

  def fused(self, weights, inputs: int) -> tuple[jax.Array, jax.Array | None]:
    """The gates' and the merge's weights as one matrix over [own input;
    neighbours]: ([3F, I + D F], the bias [3F, 1] or None), so that a step
    is one product (the merge's block over the own input is zero)."""
    f = self.features
    merge = jnp.concatenate(
        [jnp.zeros((f, inputs), self.param_dtype), weights["w_m"]], axis=1)
    matrix = jnp.concatenate([weights["w_i"], merge])
    bias = None
    if self.use_bias:
      bias = jnp.concatenate([weights["b"], jnp.zeros(f, self.param_dtype)])
      bias = bias[:, None]
    return matrix, bias

  def step(self, fused, own: jax.Array, neighbours: jax.Array) -> jax.Array:
    """One step: own input [I, B], neighbour states [D F, B] -> h [F, B];
    `fused` from `fused`."""
    matrix, bias = fused
    v = jnp.concatenate([own.astype(self.param_dtype), neighbours])
    linear = jnp.dot(matrix, v, precision=self.precision)
    return self._cell(linear if bias is None else linear + bias)

  def history(self, states: jax.Array) -> jax.Array:
    """Every step's states [T, F, B] -> the history a restart reads [T + 1,
    F, B]: the last row zero, what an absent neighbour reads."""
    return jnp.concatenate([states.astype(self.param_dtype),
                            jnp.zeros((1,) + states.shape[1:],
                                      self.param_dtype)])

  def restart_step(self, fused, own: jax.Array, history: jax.Array,
                   t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Step t of a restart (`zoo.models.recurrent`): own input [I, b] and
    the history [T + 1, F, b] -> (h [F, b], the history with h at row t).

    A restart recomputes configurations that equal others before some
    step from the others' states: a step reads only earlier steps, so it
    reads them from a history of every step's states (the others' before
    the restart, its own after), and no cache is rebuilt."""
    read = jnp.asarray(self.neighbours.read_step)[t]  # [D]
    neighbours = history[read].reshape(-1, history.shape[-1])  # [D F, b]
    h = self.step(fused, own, neighbours)
    return h, jax.lax.dynamic_update_index_in_dim(history, h, t, 0)

  def __call__(self, own: jax.Array) -> jax.Array:
    """The full pass: own inputs [T, I, B] of every step -> h [T, F, B]."""
    return self._scan(own, None, record=False)[0]

  def probed(self, shift: jax.Array | None, own: jax.Array):
    """The full pass with `shift` [B, T, 3F] (or None) added to the linear
    outputs of every step (`zoo.nn.gradient_rules`): (h [T, F, B], the
    inputs {"own": [B, T, I], "neighbours": [B, T, D F]}, the linear
    outputs' shape [B, T, 3F])."""
    return self._scan(own, shift, record=True)

  def _scan(self, own: jax.Array, shift: jax.Array | None, record: bool):
    steps, inputs, batch = own.shape
    weights = self.weights(inputs)
    from_own = self._own_part(weights, own)  # [T, 3F, B], all steps at once
    if shift is not None:
      from_own = from_own + jnp.transpose(shift, (1, 2, 0))
    from_neighbours = self._from_neighbours(weights, inputs)
    buffer = _varying_as(self.empty_buffer(batch), (own, weights))

    def step(buffer, xs):
      t, linear = xs
      neighbours = self.gather(buffer, t)  # [D F, B]
      h = self._cell(linear + jnp.dot(from_neighbours, neighbours,
                                      precision=self.precision))
      return self.store(buffer, h, t), ((h, neighbours) if record else h)

    _, out = jax.lax.scan(step, buffer, (jnp.arange(steps), from_own))
    if not record:
      return out, None, None
    h, neighbours = out
    batch_first = lambda a: jnp.transpose(a, (2, 0, 1))
    point = jax.ShapeDtypeStruct((batch, steps, from_own.shape[1]),
                                 from_own.dtype)
    return h, {"own": batch_first(own.astype(self.param_dtype)),
               "neighbours": batch_first(neighbours)}, point

  def gradient_rule(self) -> gradient_rules.GradientRule:
    """w_i and b apply to [own; neighbours] at every step, w_m to the
    neighbours (`zoo.nn.gradient_rules`); c is [B, T, 3F]."""
    f, use_bias = self.features, self.use_bias

    def sample_gradients(inputs, c, shapes):
      del shapes
      gates, merge = c[..., :2 * f], c[..., 2 * f:]
      both = jnp.concatenate([inputs["own"], inputs["neighbours"]], axis=-1)
      grads = dict(
          w_i=gradient_rules.shared_linear(both, gates, out_first=True),
          w_m=gradient_rules.shared_linear(inputs["neighbours"], merge,
                                           out_first=True))
      if use_bias:
        grads["b"] = gradient_rules.shared_bias(gates)
      return grads

    return gradient_rules.GradientRule(sample_gradients)

  def gather(self, buffer: jax.Array, t: jax.Array) -> jax.Array:
    """The neighbours' states at step t: [D F, B]."""
    states = buffer[jnp.asarray(self.neighbours.read_slot)[t]]  # [D, F, B]
    return states.reshape(-1, states.shape[-1])

  def empty_buffer(self, batch_size: int) -> jax.Array:
    """The slots (see `Neighbourhood`), zeros: [S, F, B]."""
    return jnp.zeros((self.neighbours.slots, self.features, batch_size),
                     self.param_dtype)

  def store(self, buffer: jax.Array, h: jax.Array, t: jax.Array) -> jax.Array:
    """The buffer with the state of step t written."""
    nb = self.neighbours
    buffer = jax.lax.dynamic_update_index_in_dim(buffer, h, t % nb.ring, 0)
    return jax.lax.dynamic_update_index_in_dim(
        buffer, h, jnp.asarray(nb.keep_slot)[t], 0)

  def init_cache(self, batch_size: int) -> None:
    hk.set_state("buffer", self.empty_buffer(batch_size))

  def update_site(self, own: jax.Array, t: jax.Array,
                  in_features: int) -> jax.Array:
    """The cached pass: own input [I, B] at step t -> h [F, B]; the states
    of the steps before t are in the cache."""
    buffer = hk.get_state("buffer")
    h = self.step(self.fused(self.weights(in_features), in_features), own,
                  self.gather(buffer, t))
    hk.set_state("buffer", self.store(buffer, h, t))
    return h


def _varying_as(value: jax.Array, inputs) -> jax.Array:
  """`value` typed as varying over every mesh axis that some leaf of
  `inputs` varies over. Inside `shard_map` (NetKet's SR evaluates models so)
  a scan's initial carry must have the type of what its step returns, which
  varies as the inputs and weights do; elsewhere there are no such axes."""
  axes = set()
  for leaf in jax.tree.leaves(inputs):
    axes |= _varying_axes(leaf)
  axes -= _varying_axes(value)
  if not axes:
    return value
  return jax.lax.pcast(value, tuple(sorted(axes)), to="varying")


def _varying_axes(x) -> set:
  """The mesh axes x varies over inside shard_map (jax 0.10: the aval's
  `manual_axis_type.varying`)."""
  kind = getattr(jax.typeof(x), "manual_axis_type", None)
  return set(getattr(kind, "varying", ()))

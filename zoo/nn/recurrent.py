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

Every face runs the same step, one product of the three blocks' weights
stacked ([W_a; W_z; [0, W_m]], `fused`) with v (the products are small, so
one call instead of two pays). The wrap-around directions of a periodic
lattice (`next`, `below`) have a neighbour on few steps (a row's last
step, the last row): their columns form a second product, taken on a CPU
only on those steps (`Neighbourhood.rare`, `CONDITIONAL_BACKENDS`), so a
periodic step multiplies about as much as an open one. The full pass
(`__call__`, a layer's own inputs at every step) scans it over the sites;
the cached pass
(`cached_step`) takes one step with the states in Haiku state, one buffer
of slots: a ring of the last R steps' states, on periodic lattices the
states of the first steps (which the last row and the end of a chain read
back), a slot that stays zero (what an absent neighbour reads) and one
that is written and never read. Every step reads its neighbours by a
table of slots and writes two slots, so nothing is masked on the way. A restart (`restart_step`, local energies) recomputes
configurations from a step on, reading their earlier states from a
history of every step's states instead of a ring.

Glossary of shapes:
  B: batch, N: sites, T: steps (= N), F: hidden features, D: neighbour
  directions, K: local states, R: ring length, W: row width.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.nn import gradient_rules
from zoo.nn import initializers

# The backends on which a step takes the rare directions' product under a
# conditional, only on their steps (`Neighbourhood.rare`). A CPU runs a
# conditional inline; on a GPU XLA may read its predicate back to the host
# at every step (unmeasured), so elsewhere both products are taken at
# every step: exact too, the rare directions' states being zeros off
# their steps.
CONDITIONAL_BACKENDS = ("cpu",)

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

  Derived: `rare`, the directions present on at most half the steps (the
  wrap-arounds `next` and `below` of a periodic lattice), whose states a
  step multiplies only on `rare_steps` (elsewhere they are zeros);
  `common`, the others, multiplied at every step.
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

  @functools.cached_property
  def rare(self) -> tuple[int, ...]:
    steps = len(self.order)
    return tuple(d for d in range(len(self.directions))
                 if 2 * self.present[:, d].sum() <= steps)

  @property
  def common(self) -> tuple[int, ...]:
    rare = self.rare
    return tuple(d for d in range(len(self.directions)) if d not in rare)

  @property
  def rare_steps(self) -> np.ndarray:
    """[T] the steps where some rare direction is present."""
    return self.present[:, list(self.rare)].any(axis=1)

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

  def _cell(self, linear: jax.Array) -> jax.Array:
    """The linear outputs [3F, B] (candidate and update gates, merge) -> h."""
    return _cell(*_gates(linear, self.features))

  def fused(self, weights, inputs: int) -> Fused:
    """The gates' and the merge's weights as products over [own input;
    neighbours] (`Fused`), so that a step is one product, two on the steps
    where a rare direction is present (the merge's block over the own
    input is zero)."""
    return self._pass().split(*self._matrix(weights, inputs), inputs)

  def _matrix(self, weights, inputs: int
              ) -> tuple[jax.Array, jax.Array | None]:
    """([3F, I + D F] over [own input; the directions in order], the bias
    [3F, 1] or None)."""
    f = self.features
    merge = jnp.concatenate(
        [jnp.zeros((f, inputs), self.param_dtype), weights["w_m"]], axis=1)
    matrix = jnp.concatenate([weights["w_i"], merge])
    bias = None
    if self.use_bias:
      bias = jnp.concatenate([weights["b"], jnp.zeros(f, self.param_dtype)])
      bias = bias[:, None]
    return matrix, bias

  def _pass(self) -> _Pass:
    return _Pass(self.neighbours, self.features, self.precision,
                 jax.default_backend() in CONDITIONAL_BACKENDS)

  def step(self, fused: Fused, own: jax.Array, neighbour, t) -> jax.Array:
    """Step t: own input [I, B] and `neighbour(d)`, the state [F, B] of
    direction d's neighbour (zeros where absent) -> h [F, B]; `fused` from
    `fused`."""
    linear = self._pass().linear(fused, own.astype(self.param_dtype),
                                 neighbour, t)
    return self._cell(linear if fused.bias is None else linear + fused.bias)

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
    h = self.step(fused, own, lambda d: jax.lax.dynamic_index_in_dim(
        history, read[d], 0, keepdims=False), t)
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
    matrix, bias = self._matrix(self.weights(inputs), inputs)
    if bias is None:
      bias = jnp.zeros((matrix.shape[0], 1), self.param_dtype)
    if shift is not None:
      shift = jnp.transpose(shift, (1, 2, 0))  # [T, 3F, B]
    h = _full_pass(self._pass(), matrix, bias, own.astype(self.param_dtype),
                   shift)
    if not record:
      return h, None, None
    history = self.history(h)
    neighbours = history[jnp.asarray(self.neighbours.read_step)]  # [T, D, F, B]
    batch_first = lambda a: jnp.transpose(a, (2, 0, 1))
    point = jax.ShapeDtypeStruct((batch, steps, 3 * self.features),
                                 self.param_dtype)
    return h, {"own": batch_first(own.astype(self.param_dtype)),
               "neighbours": batch_first(
                   neighbours.reshape(steps, -1, batch))}, point

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

  def empty_buffer(self, batch_size: int) -> jax.Array:
    """The slots (see `Neighbourhood`), zeros: [S, F, B]."""
    return jnp.zeros((self.neighbours.slots, self.features, batch_size),
                     self.param_dtype)

  def init_cache(self, batch_size: int) -> None:
    hk.set_state("buffer", self.empty_buffer(batch_size))

  def cached_step(self, own: jax.Array, t: jax.Array,
                  in_features: int) -> jax.Array:
    """The cached pass: own input [I, B] at step t -> h [F, B]; the states
    of the steps before t are in the cache."""
    buffer = hk.get_state("buffer")
    layer = self._pass()
    h = self.step(self.fused(self.weights(in_features), in_features), own,
                  layer.reader(buffer, t), t)
    hk.set_state("buffer", layer.store(buffer, h, t))
    return h


class Fused(NamedTuple):
  """A layer's weights as products over [own input I; neighbours]
  (`LatticeGRU.fused`; rows: a, z, the merge).

  Attributes:
    common: [3F, I + C F] over the own input and the common directions
      (`Neighbourhood.common`, C of them, in order).
    rare: [3F, R F] over the rare directions, or None without any.
    bias: [3F, 1], or None without a bias.
  """
  common: jax.Array
  rare: jax.Array | None
  bias: jax.Array | None


def _gates(linear: jax.Array, features: int):
  """The linear outputs [3F, B] -> (a, z, W_m n): the candidate state, the
  update gate and the merged neighbours (module doc)."""
  a = jnp.tanh(linear[:features])
  z = jax.nn.sigmoid(linear[features:2 * features])
  return a, z, linear[2 * features:]


def _cell(a: jax.Array, z: jax.Array, merged: jax.Array) -> jax.Array:
  """h = z a + (1 - z) W_m n."""
  return merged + z * (a - merged)


@dataclasses.dataclass(frozen=True)
class _Pass:
  """What a full pass needs of its layer besides arrays (static, hashable);
  `conditional`: the rare directions' product only on their steps
  (`CONDITIONAL_BACKENDS`)."""
  neighbours: Neighbourhood
  features: int
  precision: Any
  conditional: bool = True

  def split(self, matrix: jax.Array, bias: jax.Array | None,
            inputs: int) -> Fused:
    """The weights over [own input; the directions in order] [3F, I + D F]
    -> `Fused`."""
    nb = self.neighbours
    columns = self.blocks(matrix, range(len(nb.directions)), inputs, axis=1)
    return Fused(
        jnp.concatenate([matrix[:, :inputs]]
                        + [columns[d] for d in nb.common], axis=1),
        (jnp.concatenate([columns[d] for d in nb.rare], axis=1)
         if nb.rare else None),
        bias)

  def blocks(self, a: jax.Array, directions, start: int,
             axis: int) -> dict[int, jax.Array]:
    """{d: the F-wide block of `a` along `axis` for the i-th of
    `directions`}, the blocks laid out in that order from `start` on."""
    f = self.features
    return {d: jax.lax.slice_in_dim(a, start + i * f, start + (i + 1) * f,
                                    axis=axis)
            for i, d in enumerate(directions)}

  def linear(self, fused: Fused, own: jax.Array, neighbour,
             t: jax.Array) -> jax.Array:
    """The products at step t, without the bias: [3F, B]. `neighbour(d)`
    gives direction d's state [F, B]; the rare directions are multiplied
    only on the steps where one is present (`conditional`)."""
    nb = self.neighbours
    v = jnp.concatenate([own] + [neighbour(d) for d in nb.common])
    linear = jnp.dot(fused.common, v, precision=self.precision)
    if fused.rare is None:
      return linear
    rare = jnp.concatenate([neighbour(d) for d in nb.rare])
    with_rare = lambda linear, rare: linear + jnp.dot(
        fused.rare, rare, precision=self.precision)
    if not self.conditional:
      return with_rare(linear, rare)
    return jax.lax.cond(jnp.asarray(nb.rare_steps)[t], with_rare,
                        lambda linear, rare: linear, linear, rare)

  def reader(self, buffer: jax.Array, t: jax.Array):
    """d -> the state [F, B] of direction d's neighbour at step t, from the
    slots: one dynamic slice each (XLA copies slices faster than it gathers
    rows)."""
    slots = jnp.asarray(self.neighbours.read_slot)[t]  # [D]
    return lambda d: jax.lax.dynamic_index_in_dim(buffer, slots[d], 0,
                                                  keepdims=False)

  def store(self, buffer: jax.Array, h: jax.Array, t: jax.Array) -> jax.Array:
    """The slots with the state of step t written."""
    nb = self.neighbours
    buffer = jax.lax.dynamic_update_index_in_dim(buffer, h, t % nb.ring, 0)
    return jax.lax.dynamic_update_index_in_dim(
        buffer, h, jnp.asarray(nb.keep_slot)[t], 0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _full_pass(layer: _Pass, matrix: jax.Array, bias: jax.Array,
               own: jax.Array, shift: jax.Array | None) -> jax.Array:
  """A layer's full pass as a pure function of its fused weights (`fused`:
  [3F, I + D F], bias [3F, 1]), its own inputs [T, I, B] and a shift [T,
  3F, B] (or None) at its linear outputs: h [T, F, B].

  Its reverse pass (`_full_pass_backward`) is written out: a scan back
  over the steps that carries the states' cotangents indexed by step and
  gives the linear outputs' cotangents [T, 3F, B]; the weights' cotangent
  is then taken for all steps at once after the scan (a product per step
  over the samples, summed), not accumulated inside it as the scan's own
  transpose does.
  """
  return _full_pass_forward(layer, matrix, bias, own, shift)[0]


def _full_pass_forward(layer, matrix, bias, own, shift):
  steps, _, batch = own.shape
  f = layer.features
  buffer = _varying_as(jnp.zeros((layer.neighbours.slots, f, batch),
                                 matrix.dtype), (own, matrix))
  shifts = (jnp.zeros((steps, 0, batch), matrix.dtype) if shift is None
            else shift)

  fused = layer.split(matrix, None, own.shape[1])  # the bias added below

  def step(buffer, xs):
    t, own_t, shift_t = xs
    linear = layer.linear(fused, own_t, layer.reader(buffer, t), t) + bias
    if shift is not None:
      linear = linear + shift_t
    gates = _gates(linear, f)
    h = _cell(*gates)
    return layer.store(buffer, h, t), (h, jnp.concatenate(gates))

  _, (h, gates) = jax.lax.scan(step, buffer,
                               (jnp.arange(steps), own, shifts))
  return h, (matrix, own, h, gates)


def _full_pass_backward(layer, residuals, h_cotangent):
  matrix, own, h, gates = residuals
  steps, inputs, batch = own.shape
  f = layer.features
  nb = layer.neighbours
  fused = layer.split(matrix, None, inputs)
  read = jnp.asarray(nb.read_step)  # [T, D]
  # The states' cotangents by step; row T gathers what absent neighbours
  # would receive.
  pending = _varying_as(jnp.zeros((steps + 1, f, batch), h.dtype),
                        (h_cotangent, matrix))

  def step(pending, t):
    dh = h_cotangent[t] + pending[t]
    a, z, merged = jnp.split(gates[t], 3)
    d_linear = jnp.concatenate([dh * z * (1 - a * a),
                                dh * (a - merged) * z * (1 - z),
                                dh * (1 - z)])  # [3F, B]
    dv = jnp.dot(fused.common.T, d_linear, precision=layer.precision)
    to = layer.blocks(dv, nb.common, inputs, axis=0)
    if fused.rare is not None:  # only where a rare direction is present
      product = lambda d: jnp.dot(fused.rare.T, d, precision=layer.precision)
      rare = product(d_linear) if not layer.conditional else jax.lax.cond(
          jnp.asarray(nb.rare_steps)[t], product,
          lambda d: _varying_as(
              jnp.zeros((len(nb.rare) * f, batch), d.dtype), d),
          d_linear)
      to.update(layer.blocks(rare, nb.rare, 0, axis=0))
    pending = pending.at[read[t]].add(
        jnp.stack([to[d] for d in range(len(nb.directions))]))
    return pending, (d_linear, dv[:inputs])

  _, (d_linear, d_own) = jax.lax.scan(step, pending, jnp.arange(steps),
                                      reverse=True)
  history = jnp.concatenate([h, jnp.zeros_like(h[:1])])

  def products(at, directions, extra=()):
    """sum over the steps `at` of d_linear x [extra; the directions'
    states]: [3F, len(extra inputs) + len(directions) F]."""
    states = history[nb.read_step[np.ix_(at, directions)]]
    v = jnp.concatenate(list(extra) + [states.reshape(len(at), -1, batch)],
                        axis=1)
    # Per step, then summed: XLA on CPU contracts t and b at once slowly.
    return jnp.einsum("tob,tib->toi", d_linear[at], v,
                      precision=layer.precision).sum(axis=0)

  # The rare directions' states are zeros off their steps: their columns
  # sum over those steps only.
  d_common = products(np.arange(steps), list(nb.common), extra=(own,))
  blocks = layer.blocks(d_common, nb.common, inputs, axis=1)
  if nb.rare:
    d_rare = products(np.flatnonzero(nb.rare_steps), list(nb.rare))
    blocks.update(layer.blocks(d_rare, nb.rare, 0, axis=1))
  d_matrix = jnp.concatenate(
      [d_common[:, :inputs]] + [blocks[d] for d in range(len(nb.directions))],
      axis=1)
  d_bias = jnp.sum(d_linear, axis=(0, 2))[:, None]
  return d_matrix, d_bias, d_own, d_linear


def _full_pass_vjp_forward(layer, matrix, bias, own, shift):
  h, residuals = _full_pass_forward(layer, matrix, bias, own, shift)
  return h, (residuals, bias, shift)


def _full_pass_vjp_backward(layer, saved, h_cotangent):
  residuals, bias, shift = saved
  matrix, own = residuals[0], residuals[1]
  d_matrix, d_bias, d_own, d_linear = _full_pass_backward(
      layer, residuals, h_cotangent)
  # Inside shard_map a cotangent has its input's type: an input the same on
  # every device (the weights) gets the sum of the devices' shares, as
  # JAX's own transposes give it.
  return (_summed_as(d_matrix, matrix), _summed_as(d_bias, bias),
          _summed_as(d_own, own),
          None if shift is None else _summed_as(d_linear, shift))


def _summed_as(cotangent: jax.Array, primal: jax.Array) -> jax.Array:
  """`cotangent` summed over the mesh axes it varies over and `primal`
  does not (none outside shard_map)."""
  axes = _varying_axes(cotangent) - _varying_axes(primal)
  return jax.lax.psum(cotangent, tuple(sorted(axes))) if axes else cotangent


_full_pass.defvjp(_full_pass_vjp_forward, _full_pass_vjp_backward)


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

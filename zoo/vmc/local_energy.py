"""Local energies that reuse what a configuration shares with its connected ones.

E_loc(x) = sum_x' <x|H|x'> psi(x') / psi(x) evaluates log psi on every
connected x' with a nonzero matrix element (the others add nothing: a
Heisenberg bond between parallel spins, about half of them). A connected
x' that first differs from x at generation step j has the conditionals of
x at every step up to j, and a body whose full pass is a scan over the
steps (the recurrent family: `restarts`) computes its states at every step
up to j equal to x's. So one full pass over x keeps its states at every
step (`keep`), and each x' runs the scan only from step j + 1 on, from
x's states before it (`conditionals_restarted`). The pairs (sample,
connected x') with a nonzero element are gathered, sorted by their step
j, and go through the scan in passes of a fixed number of pairs, each pass
from the smallest j + 1 among its pairs, in a loop that runs as many
passes as the samples need: the work per x' is N - j - 1 steps up to a
few, and no pass is spent on a vanishing element. Exact: the same
conditionals (equal to the full evaluation to round-off).

Models whose outputs see only a bounded stretch of earlier sites (the
masked and gated convolutions) are chains of stages over units (a site in
1D, a row in 2D), stage i's output at a unit seeing its input from b_i
units back to that unit (`reach`). If x' differs from x in units u0 .. u1,
stage i's output differs from x's only on the units u0 .. u1 + b_0 + ..
+ b_i (its cone), and there it depends on stage i's input from b_i units
before u0 on. So x's stage outputs are kept from one full pass, and each
stage of x' is computed only on its cone, from a window of x's input to
that stage with x''s own values written over the cone of the stage before
(one "valid" pass over all windows of one shape). Above the lattice's top
row the window holds zeros, the layers' own padding; at the bottom the
cones end at the lattice's edge. Then

  log psi(x') = log psi(x) + sum_{i in cone} (log psi_i(x') - log psi_i(x)).

Connected configurations whose cones have the same shape go through one
pass (`cone_plan`); cones are used only when their stages' outputs cover at
most CONE_MAX_FRACTION of the units of full passes.

The dense and attention bodies (`suffixes`) compute a configuration from
any site s on from what x keeps of one full pass (`keep`): the dense
stack its stage inputs and outputs (each layer is linear, so x''s output
from s on is x's plus the layer's kernel from s on applied to the change
of its input), attention every block's keys and values (the steps before
s attend to the same ones). A connected x' whose first change is at site
j is computed from the first site s of its block of j (equal blocks of
sites, one pass each; how many, and samples per pass, by what the body
keeps, `model.suffixes`: FromFirstChange's SUFFIX_SETTINGS):

  log psi(x') = sum_{t < s} log psi_t(x) + sum_{t >= s} log psi_t(x').

Each way is a strategy object with one home and its docstring:
`Restarts`, `FromFirstChange`, `InCones` and `FullPasses` (what any model
can do). A strategy asks the model what its body declares (`restarts`,
`suffixes`, `reach`), never its family; `strategy_for` picks the first of
STRATEGIES that applies, `local_energies(..., strategy=...)` takes one.

Glossary of shapes:
  B: samples, C: samples in one chunk, N: sites, T: steps (= N),
  M: connected configurations per sample, K: local states.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.chunks import map_chunks
from zoo.physics.hamiltonians import local_energy_sum

# Connected configurations per pass of restarts: each pass is a scan from
# the smallest restart step among its configurations, so smaller passes
# waste fewer steps and larger ones run larger products
# (docs/benchmarks.md, "Tuned constants").
RESTART_CONFIGS_PER_PASS = 2048
# Samples whose connected configurations are gathered for the passes at
# once, when local_energies is not told a chunk size (bounds the [C, M, N]
# connected configurations in memory).
RESTART_CONNECTED_PER_CHUNK = 1 << 17
# Samples per pass of cones when local_energies is not told a chunk size.
CONE_SAMPLES_PER_PASS = 32
# From the first change on: (blocks of sites, samples per pass) by what the
# body keeps (docs/benchmarks.md, "Tuned constants").
SUFFIX_SETTINGS = (("linear", (4, 512)), ("attention", (16, 32)))


# Cones are used when their stages' outputs cover at most this fraction
# of the units that full passes over the connected configurations would
# (BENCHMARKS.md, "Tuned constants").
CONE_MAX_FRACTION = 0.75


class Cones(NamedTuple):
  """Connected configurations whose cones have one shape.

  Attributes:
    terms: [m] which connected configurations (indices into M).
    first: [m] the first unit each one changes.
    changed: units from the first changed one to the last (u1 - u0 + 1).
    units: the units of the last stage's cone (from the first changed one).
    sites: [m, units * unit] where the conditionals may differ from x's.
  """
  terms: np.ndarray
  first: np.ndarray
  changed: int
  units: int
  sites: np.ndarray


@functools.lru_cache(maxsize=64)
def cone_plan(hamiltonian, reach: tuple[int, tuple[int, ...]]
              ) -> tuple[Cones, ...]:
  """The cones of every connected configuration that changes x (module
  docstring), grouped by shape, for a body of `reach` (unit, backs).
  Cached: `strategy` and `local_energies` ask for the same plan."""
  unit, backs = reach
  n = hamiltonian.n_sites
  total_units = n // unit
  groups = {}
  for m, sites in enumerate(hamiltonian.connected_sites()):
    changed = sites[sites >= 0]
    if not changed.size:
      continue  # the diagonal
    u0, u1 = changed.min() // unit, changed.max() // unit
    units = min(u1 - u0 + 1 + sum(backs), total_units - u0)
    positions = u0 * unit + np.arange(units * unit)
    groups.setdefault((u1 - u0 + 1, units), []).append(
        (m, u0, positions >= changed.min()))
  return tuple(Cones(terms=np.array([m for m, _, _ in members]),
                      first=np.array([u for _, u, _ in members]),
                      changed=changed, units=units,
                      sites=np.stack([c for _, _, c in members]))
               for (changed, units), members in sorted(groups.items()))


def stage_units(cones: Cones, backs: tuple[int, ...]) -> list[tuple[int, int]]:
  """(input units that differ from x's, output units) of each stage."""
  out, changed = [], cones.changed
  for back in backs:
    out.append((changed, min(changed + back, cones.units)))
    changed = out[-1][1]
  return out


def suffix_plan(n_sites: int, first: np.ndarray, blocks: int
                ) -> tuple[tuple[int, np.ndarray], ...]:
  """(first site of the block, the terms whose first changed site `first`
  [M] falls in it) for each of `blocks` equal blocks of sites that holds
  some; the diagonal (first = N) in none."""
  bounds = np.unique(np.linspace(0, n_sites, min(blocks, n_sites) + 1)
                     .astype(int))
  plan = []
  for begin, end in zip(bounds[:-1], bounds[1:]):
    terms = np.flatnonzero((first >= begin) & (first < end))
    if terms.size:
      plan.append((int(begin), terms))
  return tuple(plan)


def first_changed_steps(hamiltonian, order: np.ndarray,
                        permutations: np.ndarray | None = None) -> np.ndarray:
  """[M] the first step at which each connected configuration may differ
  from x (T for the diagonal term, which never does); with `permutations`
  [G, N] (`zoo.models.Images`), [G, M]: at which each image g x' may
  differ from g x (site permutations[g, i] of x is site i of its image)."""
  step_of = np.argsort(order)
  sites = hamiltonian.connected_sites()  # [M, S], -1 where unused
  if permutations is None:
    steps = np.where(sites >= 0, step_of[np.maximum(sites, 0)], len(order))
    return steps.min(axis=1)
  # Step t of image g generates its site order[t], x's site
  # permutation[order[t]].
  return np.stack([first_changed_steps(hamiltonian, permutation[order])
                   for permutation in np.asarray(permutations)])


@dataclasses.dataclass(frozen=True)
class FullPasses:
  """Every connected configuration through the model's full pass
  (`hamiltonian.local_energy`): what any model can do."""

  name = "full"

  def applies(self, model, hamiltonian) -> bool:
    del model, hamiltonian
    return True

  def samples_per_pass(self, model, hamiltonian) -> None:
    """None: all at once, in the Hamiltonian's own passes of about
    `zoo.physics.hamiltonians.CONFIGS_PER_PASS` configurations."""
    del model, hamiltonian

  def __call__(self, model, hamiltonian, params, x: jax.Array) -> jax.Array:
    """The local energies of one chunk x [C, N]."""
    return hamiltonian.local_energy(model.log_psi, params, x)


@dataclasses.dataclass(frozen=True)
class Restarts:
  """From x's states at the step where each connected configuration first
  differs, vanishing elements skipped (module doc): a fast model whose full
  pass is a scan (`model.restarts`, the recurrent family). A model with
  `images` (a symmetrized one) restarts its base: each image g x' from g x's
  states at the step where those two first differ (g moves the changed
  sites, so that step depends on g), then combines the images.

  Attributes:
    configs_per_pass: connected configurations through the scan at once.
    connected_per_chunk: connected configurations (samples times M) whose
      pairs are gathered at once when `local_energies` is not told a chunk
      size.
  """
  configs_per_pass: int = RESTART_CONFIGS_PER_PASS
  connected_per_chunk: int = RESTART_CONNECTED_PER_CHUNK
  name = "restart"

  def applies(self, model, hamiltonian) -> bool:
    del hamiltonian
    return bool(model.restarts)

  def samples_per_pass(self, model, hamiltonian) -> int:
    images = 1 if model.images is None else len(model.images.permutations)
    return max(1, self.connected_per_chunk // (hamiltonian.n_connected
                                               * images))

  def __call__(self, model, hamiltonian, params, x: jax.Array) -> jax.Array:
    """The local energies of one chunk x [C, N]."""
    return _restarted(model, hamiltonian, params, x, checks.positive_int(
        "configs_per_pass", self.configs_per_pass))


@dataclasses.dataclass(frozen=True)
class FromFirstChange:
  """Each connected configuration from its block's first site on, from
  what x keeps of its full pass (module doc): a body with `suffixes`
  (dense, attention).

  Attributes:
    settings: (what the body keeps, (blocks of sites, samples per pass))
      pairs: SUFFIX_SETTINGS.
  """
  settings: tuple[tuple[str, tuple[int, int]], ...] = SUFFIX_SETTINGS
  name = "suffix"

  def applies(self, model, hamiltonian) -> bool:
    del hamiltonian
    return bool(model.suffixes)

  def samples_per_pass(self, model, hamiltonian) -> int:
    del hamiltonian
    return dict(self.settings)[model.suffixes][1]

  def __call__(self, model, hamiltonian, params, x: jax.Array) -> jax.Array:
    """The local energies of one chunk x [C, N]; raster order."""
    blocks = dict(self.settings)[model.suffixes][0]
    plan = suffix_plan(hamiltonian.n_sites, first_changed_steps(
        hamiltonian, np.arange(hamiltonian.n_sites)), blocks)
    return _from_first_change(model, hamiltonian, params, x, plan)


@dataclasses.dataclass(frozen=True)
class InCones:
  """Only where each connected configuration may differ from x, stage by
  stage (module doc): a body with a bounded `reach` (the convolutions),
  when its cones cover at most `max_fraction` of the units of full passes.

  Attributes:
    max_fraction: CONE_MAX_FRACTION.
    samples: samples per pass when `local_energies` is not told a chunk
      size.
  """
  max_fraction: float = CONE_MAX_FRACTION
  samples: int = CONE_SAMPLES_PER_PASS
  name = "cones"

  def applies(self, model, hamiltonian) -> bool:
    if model.reach is None:
      return False
    unit, backs = model.reach
    full = (hamiltonian.n_sites // unit) * len(backs) * (
        hamiltonian.n_connected - 1)
    cones = sum(len(c.terms) * sum(u for _, u in stage_units(c, backs))
                for c in cone_plan(hamiltonian, model.reach))
    return cones <= self.max_fraction * full

  def samples_per_pass(self, model, hamiltonian) -> int:
    del model, hamiltonian
    return self.samples

  def __call__(self, model, hamiltonian, params, x: jax.Array) -> jax.Array:
    """The local energies of one chunk x [C, N]."""
    return _in_cones(model, hamiltonian, params, x,
                     cone_plan(hamiltonian, model.reach))


# In the order `strategy` asks them; full passes apply to every model.
STRATEGIES = (Restarts(), FromFirstChange(), InCones(), FullPasses())


def strategy_for(model, hamiltonian):
  """The first of STRATEGIES that applies to `model` (what its body
  declares it can do) under `hamiltonian`."""
  return next(s for s in STRATEGIES if s.applies(model, hamiltonian))


def local_energies(model, hamiltonian, params, x: jax.Array, *,
                   chunk_size: int | None = None,
                   strategy=None) -> jax.Array:
  """E_loc(x) [B] of `model` (a `zoo.models.Model`) under `hamiltonian`.

  By `strategy` (one of the strategy objects above, or None for
  `strategy_for(model, hamiltonian)`). `chunk_size`: at most that many
  samples (times M connected configurations) at once; None: the
  strategy's samples per pass.
  """
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  if strategy is None:
    strategy = strategy_for(model, hamiltonian)
  if not strategy.applies(model, hamiltonian):
    raise checks.FieldError("strategy", strategy.name,
                            f"does not apply to {model.name}")
  batch = x.shape[0]
  if chunk_size is None:
    chunk_size = strategy.samples_per_pass(model, hamiltonian) or batch
  return map_chunks(lambda chunk: strategy(model, hamiltonian, params, chunk),
                    x, chunk_size)


def _restarted(model, hamiltonian, params, x: jax.Array,
               configs_per_pass: int) -> jax.Array:
  """The local energies of one chunk x [C, N] by restarts (module doc); a
  model with `images` restarts its base on every image."""
  xp, mels = hamiltonian.connected(x)  # [C, M, N], [C, M]
  batch, m, n = xp.shape
  images = model.images
  if images is None:
    first = first_changed_steps(hamiltonian, np.asarray(model.order))
    log_psi_x, log_psi = _restarted_log_psi(
        model, params, x, xp, mels != 0, jnp.asarray(first), configs_per_pass)
    return local_energy_sum(mels, log_psi, log_psi_x)
  base = images.base
  first = first_changed_steps(hamiltonian, np.asarray(base.order),
                              images.permutations)  # [G, M]
  g = len(first)
  image_x = images.apply(x).reshape(g * batch, n)
  image_xp = images.apply(xp.reshape(batch * m, n)).reshape(g * batch, m, n)
  live = jnp.broadcast_to(mels != 0, (g, batch, m)).reshape(g * batch, m)
  first = jnp.broadcast_to(jnp.asarray(first)[:, None], (g, batch, m))
  log_psi_x, log_psi = _restarted_log_psi(
      base, params, image_x, image_xp, live, first.reshape(g * batch, m),
      configs_per_pass)
  return local_energy_sum(
      mels, images.combine(log_psi.reshape(g, batch, m)),
      images.combine(log_psi_x.reshape(g, batch)))


def _restarted_log_psi(model, params, x: jax.Array, xp: jax.Array,
                       live: jax.Array, first: jax.Array,
                       configs_per_pass: int
                       ) -> tuple[jax.Array, jax.Array]:
  """(log psi(x) [C], log psi(x') [C, M]) by restarts, of x [C, N] and
  its connected configurations xp [C, M, N] that may first differ from it
  at step first [M] or [C, M] (N: never), computed only where `live` [C,
  M] (elsewhere log psi(x))."""
  batch, m, n = xp.shape
  pairs = batch * m
  kept, cond_x = model.keep(params, x)  # states batch last; [C, N, K]
  indices = model.hilbert.states_to_indices
  log_psi_x = jnp.sum(jnp.take_along_axis(
      cond_x, indices(x)[..., None], axis=-1)[..., 0], axis=1)  # [C]
  # The pairs (sample, term) with a nonzero element, by restart step; the
  # others (and the diagonal, first = N) after them, never computed.
  live = live & (first < n)  # [C, M]
  restart = jnp.where(live, first + 1, n + 1).reshape(-1)
  ranked = jnp.argsort(restart, stable=True)  # [C M]
  count = jnp.sum(live)
  per_pass = min(configs_per_pass, pairs)
  passes = (count + per_pass - 1) // per_pass
  # Padding with distinct indices past the end (dropped by the writes), so
  # that every pass writes to distinct indices: the writes then promise
  # unique indices, which lets XLA scatter complex128 values in parallel on
  # a GPU (it has no 128-bit atomics, and would write them one at a time).
  ranked = jnp.concatenate([ranked, pairs + jnp.arange(-pairs % per_pass)])
  configs = xp.reshape(pairs, n)
  log_psi = jnp.broadcast_to(log_psi_x[:, None], (batch, m)).reshape(-1)

  def one_pass(k, log_psi):
    pair = jax.lax.dynamic_slice_in_dim(ranked, k * per_pass, per_pass)
    safe = jnp.minimum(pair, pairs - 1)  # padding reads the last pair
    sample = safe // m
    start = jnp.minimum(restart[pair[0]], n)  # the smallest of the pass
    config = configs[safe]  # [P, N]
    states = jax.tree.map(lambda a: jnp.take(a, sample, axis=-1), kept)
    cond = model.conditionals_restarted(params, config, states, start)
    total = jnp.sum(jnp.take_along_axis(
        cond, indices(config)[..., None], axis=-1)[..., 0], axis=1)  # [P]
    return log_psi.at[pair].set(total.astype(log_psi.dtype), mode="drop",
                                unique_indices=True)

  log_psi = jax.lax.fori_loop(0, passes, one_pass, log_psi)
  return log_psi_x, log_psi.reshape(batch, m)


def _in_cones(model, hamiltonian, params, x: jax.Array,
              plan: tuple[Cones, ...]) -> jax.Array:
  """The local energies of one chunk x [C, N] by cones (module doc)."""
  batch, n = x.shape
  unit, backs = model.reach
  xp, mels = hamiltonian.connected(x)  # [C, M, N], [C, M]
  indices = model.hilbert.states_to_indices
  zeros = jnp.zeros(batch, jnp.int32)
  values = x.astype(model.real_dtype)
  before = jnp.cumsum(values, axis=1) - values  # [C, N] sums before a site
  # x's stage inputs, and its conditionals.
  inputs = [model.units(params, x)]  # [C, U, ..., F]
  for i in range(len(backs)):
    inputs.append(model.stage(params, i, inputs[-1]))
  log_psi_x = jnp.take_along_axis(
      model.head_log_psi(params, inputs.pop(), x, zeros, before[:, 0]),
      indices(x)[..., None], axis=-1)[..., 0]  # [C, N]
  total = jnp.sum(log_psi_x, axis=1)  # [C]
  log_psi = jnp.broadcast_to(total[:, None], mels.shape)
  # Zeros above the top row: the layers' own padding.
  inputs = [jnp.pad(h, [(0, 0), (back, 0)] + [(0, 0)] * (h.ndim - 2))
            for h, back in zip(inputs, backs)]
  for cones in plan:
    m = len(cones.terms)
    first = cones.first[:, None]  # [m, 1]
    # Stage 0's input: x''s changed units.
    configs = xp[:, cones.terms].reshape(batch, m, n // unit, unit)
    h = model.units(params, configs[:, np.arange(m)[:, None],
                                    first + np.arange(cones.changed)]
                    .reshape(batch * m, cones.changed * unit))
    for i, (back, (changed, out)) in enumerate(
        zip(backs, stage_units(cones, backs))):
      # x's input from `back` units before the first changed one to the
      # end of the output, x''s own written over the changed units.
      window = inputs[i][:, first + np.arange(back + out)]  # [C, m, ...]
      window = window.reshape(batch * m, *window.shape[2:])
      window = jnp.concatenate(
          [window[:, :back], h, window[:, back + changed:]], axis=1)
      h = model.stage(params, i, window, valid=True)  # [C m, out, ...]
    positions = first * unit + np.arange(cones.units * unit)  # [m, L]
    sites = jnp.take_along_axis(
        xp[:, cones.terms], jnp.broadcast_to(
            positions, (batch, *positions.shape)), axis=2)  # [C, m, L]
    starts = jnp.broadcast_to(jnp.asarray(cones.first * unit), (batch, m))
    cone = model.head_log_psi(
        params, h, sites.reshape(batch * m, -1), starts.reshape(-1),
        before[:, cones.first * unit].reshape(-1))  # [C m, L, K]
    cone = jnp.take_along_axis(
        cone, indices(sites).reshape(batch * m, -1, 1),
        axis=-1).reshape(sites.shape)
    change = jnp.where(cones.sites, cone - log_psi_x[:, positions], 0)
    log_psi = log_psi.at[:, cones.terms].set(
        total[:, None] + jnp.sum(change, axis=-1))
  return local_energy_sum(mels, log_psi, total)


def _from_first_change(model, hamiltonian, params, x: jax.Array,
                       plan: tuple[tuple[int, np.ndarray], ...]) -> jax.Array:
  """The local energies of one chunk x [C, N] of a model with `suffixes`,
  each connected configuration from its block's first site on (module
  doc); raster order."""
  batch, n = x.shape
  xp, mels = hamiltonian.connected(x)  # [C, M, N], [C, M]
  indices = model.hilbert.states_to_indices
  values = x.astype(model.real_dtype)
  before = jnp.cumsum(values, axis=1) - values  # [C, N] sums before a site
  kept, cond_x = model.keep(params, x)
  log_psi_x = jnp.take_along_axis(cond_x, indices(x)[..., None],
                                  axis=-1)[..., 0]  # [C, N]
  prefix = jnp.cumsum(log_psi_x, axis=1) - log_psi_x  # [C, N] sums before
  total = jnp.sum(log_psi_x, axis=1)  # [C]
  log_psi = jnp.broadcast_to(total[:, None], mels.shape)
  for start, terms in plan:
    configs = xp[:, terms]  # [C, m, N]
    cond = model.conditionals_from(params, configs, kept, start,
                                   before[:, start])  # [C, m, L, K]
    cond = jnp.take_along_axis(cond, indices(configs[..., start:])[..., None],
                               axis=-1)[..., 0]
    log_psi = log_psi.at[:, terms].set(prefix[:, start:start + 1]
                                       + jnp.sum(cond, axis=-1))
  return local_energy_sum(mels, log_psi, total)

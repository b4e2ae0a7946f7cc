"""Local energies that reuse what a configuration shares with its connected
ones (restarts from the shared prefix, the dense and attention bodies from
the first change, cones of the convolutions) equal the full evaluation
(zoo.vmc.local_energy)."""


from absl.testing import absltest, parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import checks, sampler
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.models import symmetric
from zoo.vmc import local_energy
from tests import helpers

# Hamiltonians on chains and lattices, periodic and open; the conserving
# ones also in the S^z = 0 sector.
SYSTEMS = {
    "tfim_chain_open": (lambda: hamiltonians.TransverseFieldIsing(
        lattice_lib.chain(6, pbc=False), h=0.7), None),
    "heisenberg_chain_sz0": (lambda: hamiltonians.Heisenberg(
        lattice_lib.chain(6), marshall_sign=True), 0),
    "j1j2_2x3_open": (lambda: hamiltonians.J1J2(
        lattice_lib.square(2, 3, pbc=False), J2=0.4), None),
    "heisenberg_2x4_sz0": (lambda: hamiltonians.Heisenberg(
        lattice_lib.square(2, 4)), 0),
    "tfim_3x2": (lambda: hamiltonians.TransverseFieldIsing(
        lattice_lib.square(3, 2), h=1.3), None),
}
# Each family on systems that together meet every Hamiltonian, both
# boundaries and both spaces (the whole one and a sector); the recurrent
# family, which restarts by default, on all of its.
COVER = {
    "dense": ("tfim_chain_open", "heisenberg_2x4_sz0"),
    "conv1d": ("heisenberg_chain_sz0",),
    "conv2d": ("j1j2_2x3_open",),
    "gru": ("heisenberg_2x4_sz0", "j1j2_2x3_open", "tfim_3x2"),
    "transformer": ("heisenberg_chain_sz0",),
    "gated_conv1d": ("tfim_chain_open",),
    "gated_conv2d": ("tfim_3x2",),
}
# A family of the table not named above meets the systems of its lattice.
BY_LATTICE = {"chain": ("tfim_chain_open", "heisenberg_chain_sz0"),
              "square": ("j1j2_2x3_open", "heisenberg_2x4_sz0")}
COVER = {name: COVER.get(name, BY_LATTICE[record.example_lattice])
         for name, record in zoo.models.FAMILIES.items()}
CASES = [dict(testcase_name=f"{family}_{system}_{jnp.dtype(dtype).name}",
              family=family, system=system, dtype=dtype)
         for i, (family, system) in enumerate(
             (f, s) for f in helpers.SLOW_FAST for s in COVER[f])
         for dtype in ((jnp.float64, jnp.complex128)[i % 2],)]


# The families with a bounded reach, on lattices longer than it; slow and
# fast twins (the same full pass, and the same cones); both boundaries,
# Hamiltonians and spaces.
CONE_SYSTEMS = {
    "tfim_chain_open": (lambda: hamiltonians.TransverseFieldIsing(
        lattice_lib.chain(13, pbc=False), h=0.7), None),
    "heisenberg_chain_sz0": (lambda: hamiltonians.Heisenberg(
        lattice_lib.chain(12), marshall_sign=True), 0),
    "j1j2_6x3_open": (lambda: hamiltonians.J1J2(
        lattice_lib.square(6, 3, pbc=False), J2=0.4), None),
    "heisenberg_6x3_sz1": (lambda: hamiltonians.Heisenberg(
        lattice_lib.square(6, 3)), 1),
}
CONE_FIELDS = {
    "conv1d": dict(layers=2, features=3, kernel_size=2,
                   kernel_dilation=(1, 2)),
    "conv2d": dict(layers=2, features=3, kernel_size=(2, 3)),
    "gated_conv1d": dict(layers=2, features=3, kernel_size=2),
    "gated_conv2d": dict(layers=1, features=3, kernel_size=(2, 3)),
}
def _cone_systems(family):
  return (("j1j2_6x3_open", "heisenberg_6x3_sz1")
          if zoo.models.FAMILIES[family].two_d
          else ("tfim_chain_open", "heisenberg_chain_sz0"))


# Each family's two systems, the slow twin on one and the fast on the other;
# the dtypes alternate so that every system meets both.
CONE_CASES = [
    dict(testcase_name=f"{family}_{'fast' if fast else 'slow'}_{system}_"
         f"{jnp.dtype(dtype).name}", family=family, fast=fast, system=system,
         dtype=dtype)
    for i, family in enumerate(CONE_FIELDS)
    for j, system in enumerate(_cone_systems(family))
    for fast, dtype in ((bool(j), (jnp.float64, jnp.complex128)[(i + j) % 2]),)]


# Symmetrized GRUs: a sector and the whole space, periodic and open, both
# dtypes, groups of translations, the point group and the spin flip.
SYMMETRIZED_CASES = [
    dict(testcase_name=f"{system}_{names.replace(',', '_')}", system=system,
         names=names, dtype=dtype)
    for system, names, dtype in (
        ("heisenberg_2x4_sz0", "point_group,spin_flip", jnp.float64),
        ("tfim_3x2", "translations,spin_flip", jnp.complex128),
        ("j1j2_2x3_open", "point_group", jnp.complex128))]


# The day-to-day tier (tests/conftest.py) restarts the recurrent family
# (which restarts by default); the slow tier the rest.
FAST_TIER_FAMILIES = ("gru",)


def check_against_full_passes(model, ham, samples: int) -> None:
  """The local energies of `samples` samples by the model's default
  strategy in chunks of 5 and, where it restarts, by restarts in passes of
  one configuration and of a few (the passes start at different steps; the
  default's hold all of them here), against full passes to 1e-10."""
  params, _ = model.init(jax.random.key(0))
  x = sampler.sample(model, params, jax.random.key(1), samples)
  full = jax.jit(lambda p, x: ham.local_energy(model.log_psi, p, x))(
      params, x)
  if model.restarts:
    for per_pass in (1, 7):
      restarted = jax.jit(lambda p, x, n=per_pass: local_energy.Restarts(
          configs_per_pass=n)(model, ham, p, x))(params, x)
      np.testing.assert_allclose(restarted, full, rtol=0, atol=1e-10,
                                 err_msg=f"{per_pass} per pass")
  chunked = jax.jit(lambda p, x: local_energy.local_energies(
      model, ham, p, x, chunk_size=5))(params, x)
  np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-10)


class LocalEnergyTest(parameterized.TestCase):

  @helpers.grid(CASES,
                slow=lambda case: case["family"] not in FAST_TIER_FAMILIES)
  def test_restarts_equal_full_passes(self, family, system, dtype):
    build, sector = SYSTEMS[system]
    ham = build()
    hilbert = zoo.spin_half(ham.lattice.shape, total_sz=sector)
    if family not in helpers.TWO_D:
      hilbert = zoo.spin_half(ham.n_sites, total_sz=sector)
    fields = dict(helpers.FAMILY_FIELDS[family])
    if "pbc" in fields:
      fields["pbc"] = ham.lattice.pbc
    model = helpers.SLOW_FAST[family][1](hilbert, param_dtype=dtype, **fields)
    check_against_full_passes(model, ham, 24)
    self.assertEqual(local_energy.strategy_for(model, ham).name == "restart",
                     zoo.models.FAMILIES[family].body.restarts)

  @helpers.grid(SYMMETRIZED_CASES,
                slow=lambda case: case["system"] != "heisenberg_2x4_sz0")
  def test_symmetrized_restarts_equal_full_passes(self, system, names, dtype):
    # The restarting family averaged over a group: every image of every
    # connected configuration restarted from the same image of x.
    build, sector = SYSTEMS[system]
    ham = build()
    hilbert = zoo.spin_half(ham.lattice.shape, total_sz=sector)
    model = symmetric.Symmetrized(
        zoo.FastARNNGRU(hilbert, layers=2, features=3, param_dtype=dtype,
                        pbc=ham.lattice.pbc),
        symmetric.symmetry_group(names, hilbert, ham.lattice.pbc))
    self.assertEqual(local_energy.strategy_for(model, ham).name, "restart")
    check_against_full_passes(model, ham, 16)

  @parameterized.named_parameters(
      dict(testcase_name=f"{system}_{jnp.dtype(dtype).name}", system=system,
           dtype=dtype)
      for system, dtype in (("tfim_chain_open", jnp.complex128),
                            ("heisenberg_chain_sz0", jnp.float64),
                            ("j1j2_2x3_open", jnp.float64),
                            ("heisenberg_2x4_sz0", jnp.complex128)))
  @pytest.mark.slow
  def test_suffixes_equal_full_passes(self, system, dtype):
    # The dense and attention bodies from each block's first site on:
    # blocks that do not divide the lattice, one per site (one block, the
    # whole lattice, is the full pass); both twins of each (on alternate
    # systems).
    build, sector = SYSTEMS[system]
    ham = build()
    hilbert = zoo.spin_half(ham.n_sites, total_sz=sector)
    slow_dense = system in ("tfim_chain_open", "j1j2_2x3_open")
    for model in ((zoo.ARNNDense(hilbert, layers=3, features=3,
                                 param_dtype=dtype),
                   zoo.FastARNNTransformer(hilbert, layers=1, features=4,
                                         heads=1, param_dtype=dtype))
                  if slow_dense else
                  (zoo.FastARNNDense(hilbert, layers=2, features=2,
                                     use_bias=False, param_dtype=dtype),
                   zoo.ARNNTransformer(hilbert, layers=2, features=4, heads=2,
                                     param_dtype=dtype))):
      params, _ = model.init(jax.random.key(0))
      x = sampler.sample(model, params, jax.random.key(1), 16)
      full = jax.jit(lambda p, x: ham.local_energy(model.log_psi, p, x))(
          params, x)
      first = local_energy.first_changed_steps(ham, np.arange(ham.n_sites))
      for blocks in (3, ham.n_sites):
        plan = local_energy.suffix_plan(ham.n_sites, first, blocks)
        self.assertCountEqual(np.concatenate([t for _, t in plan]),
                              np.flatnonzero(first < ham.n_sites))
        suffixes = jax.jit(lambda p, x: local_energy._from_first_change(
            model, ham, p, x, plan))(params, x)
        np.testing.assert_allclose(suffixes, full, rtol=0, atol=1e-10,
                                   err_msg=f"{model.name}, {blocks} blocks")

  @parameterized.named_parameters(CONE_CASES)
  @pytest.mark.slow
  def test_cones_equal_full_passes(self, family, fast, system, dtype):
    # Lattices longer than the stages' reach, so that cones stop short of
    # the edge, start inside it and meet both; periodic bonds span it all.
    build, sector = CONE_SYSTEMS[system]
    ham = build()
    hilbert = zoo.spin_half(ham.lattice.shape
                            if zoo.models.FAMILIES[family].two_d
                            else ham.n_sites, total_sz=sector)
    model = helpers.SLOW_FAST[family][int(fast)](
        hilbert, param_dtype=dtype, **CONE_FIELDS[family])
    unit, backs = model.reach
    plan = local_energy.cone_plan(ham, model.reach)
    units = ham.n_sites // unit
    shapes = {(c.changed, c.units) for c in plan}
    self.assertTrue(any(u < units for _, u in shapes), msg=str(shapes))
    self.assertTrue(any(c.units < c.changed + sum(backs) for c in plan))
    params, _ = model.init(jax.random.key(0))
    x = sampler.sample(model, params, jax.random.key(1), 12)
    full = jax.jit(lambda p, x: ham.local_energy(model.log_psi, p, x))(
        params, x)
    # Cones wherever they apply (however little they save), in chunks of 5
    # samples, which do not divide the batch.
    in_cones = jax.jit(lambda p, x: local_energy.local_energies(
        model, ham, p, x, strategy=local_energy.InCones(max_fraction=1.0),
        chunk_size=5))(params, x)
    np.testing.assert_allclose(in_cones, full, rtol=0, atol=1e-10)

  @pytest.mark.slow
  def test_cone_plan_covers_every_changed_conditional(self):
    # Brute force: flipping the changed sites of each connected
    # configuration changes only conditionals inside its cone.
    ham = hamiltonians.Heisenberg(lattice_lib.square(5, 3))
    model = zoo.ARNNConv2D(zoo.spin_half((5, 3)), layers=2, features=3,
                           kernel_size=(2, 3), param_dtype=jnp.float64)
    params, _ = model.init(jax.random.key(0))
    x = sampler.sample(model, params, jax.random.key(1), 8)
    xp, _ = ham.connected(x)
    cond = jax.jit(jax.vmap(lambda c: model.conditionals_log_psi(params, c)))(
        xp)
    differs = np.asarray(jnp.any(jnp.abs(cond - cond[:, :1]) > 1e-12,
                                 axis=(0, 3)))  # [M, N]
    cone = np.zeros_like(differs)
    for c in local_energy.cone_plan(ham, model.reach):
      for term, first, sites in zip(c.terms, c.first, c.sites):
        cone[term, first * 3:first * 3 + sites.size] = sites
    self.assertFalse(np.any(differs & ~cone), msg=str(np.argwhere(
        differs & ~cone)))
    self.assertTrue(differs[1:].any(axis=1).all())

  def test_strategy(self):
    chain = hamiltonians.TransverseFieldIsing(lattice_lib.chain(64), h=1.0)
    square = hamiltonians.Heisenberg(lattice_lib.square(4, 4))
    conv1d = zoo.FastARNNConv1D(chain.hilbert, layers=3, features=4,
                                kernel_size=3)
    self.assertEqual(local_energy.strategy_for(conv1d, chain).name, "cones")
    dense = zoo.ARNNDense(chain.hilbert, layers=2, features=2)
    self.assertEqual(local_energy.strategy_for(dense, chain).name, "suffix")
    self.assertEqual(local_energy.strategy_for(zoo.FastARNNTransformer(
        chain.hilbert, layers=1, features=4, heads=2), chain).name, "suffix")
    conv2d = zoo.FastARNNConv2D(square.hilbert, layers=3, features=4,
                                kernel_size=(3, 3))
    self.assertEqual(local_energy.strategy_for(conv2d, square).name, "cones")
    # Cones that save too little are left for full passes.
    self.assertFalse(local_energy.InCones(max_fraction=0.1).applies(
        conv2d, square))
    with self.assertRaisesRegex(checks.FieldError, "strategy='restart'"):
      local_energy.local_energies(conv2d, square, None, None,
                                  strategy=local_energy.Restarts())
    gru = zoo.FastARNNGRU(square.hilbert, layers=1, features=4)
    self.assertEqual(local_energy.strategy_for(gru, square).name, "restart")
    self.assertEqual(local_energy.strategy_for(zoo.ARNNGRU(
        square.hilbert, layers=1, features=4), square).name, "full")
    # A symmetrized model restarts where its base does; cones and suffixes
    # it has not (its images' changed sites move).
    group = symmetric.symmetry_group("point_group", square.hilbert, True)
    self.assertEqual(local_energy.strategy_for(
        symmetric.Symmetrized(gru, group), square).name, "restart")
    self.assertEqual(local_energy.strategy_for(
        symmetric.Symmetrized(conv2d, group), square).name, "full")

  def test_first_changed_steps(self):
    ham = hamiltonians.Heisenberg(lattice_lib.square(2, 3))
    order = np.array([0, 1, 2, 5, 4, 3])  # snake order on 2 x 3
    first = local_energy.first_changed_steps(ham, order)
    sites = ham.connected_sites()
    self.assertEqual(first[0], 6)  # the diagonal never changes
    step_of = np.argsort(order)
    for m in range(1, len(first)):
      self.assertEqual(first[m], min(step_of[s] for s in sites[m] if s >= 0))
    # Per image g: the first step at which g x' differs from g x, found by
    # applying g to x and to a configuration with the term's sites flipped.
    group = symmetric.symmetry_group("point_group,spin_flip",
                                     zoo.spin_half((2, 3)), True)
    first = local_energy.first_changed_steps(ham, order, group.permutations)
    self.assertEqual(first.shape, (group.size, len(sites)))
    x = np.ones((1, 6))
    for m in range(1, len(sites)):
      xp = x.copy()
      xp[0, sites[m][sites[m] >= 0]] = -1
      differs = np.asarray(group.apply(jnp.asarray(xp))
                           != group.apply(jnp.asarray(x)))[:, 0]  # [G, N]
      for g in range(group.size):
        self.assertEqual(first[g, m], min(step_of[np.flatnonzero(
            differs[g])]), msg=f"term {m}, element {g}")


if __name__ == "__main__":
  absltest.main()

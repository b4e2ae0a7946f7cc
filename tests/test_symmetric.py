"""Symmetrized autoregressive states (zoo.models.symmetric): normalized,
invariant, sampled exactly, with exact gradients; and their groups."""

from absl.testing import absltest, parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import zoo
import zoo.models
from zoo import build, checks, registry, sampler, vmc
from zoo.models import symmetric
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from tests import helpers

CASES = [
    # A complex GRU on a periodic 2 x 4 lattice in S^z = 0: translations,
    # the rectangle's point group and the spin flip (|G| = 32: on two rows
    # the mirror that swaps them is a translation).
    dict(testcase_name="gru_2x4_sz0_complex", family="gru",
         hilbert=zoo.spin_half((2, 4), total_sz=0), dtype=jnp.complex128,
         names="translations,point_group,spin_flip", size=32),
    # A real conv1d chain, its reflection and translations (|G| = 12).
    dict(testcase_name="conv1d_chain_real", family="conv1d",
         hilbert=zoo.spin_half(6), dtype=jnp.float64,
         names="translations,reflections", size=12),
]


def build_model(family, hilbert, dtype, names, pbc=True):
  fields = dict(helpers.FAMILY_FIELDS[family])
  if "pbc" in fields:
    fields["pbc"] = pbc
  base = helpers.SLOW_FAST[family][1](hilbert, param_dtype=dtype, **fields)
  return symmetric.Symmetrized(
      base, symmetric.symmetry_group(names, hilbert, pbc))


class SymmetrizedTest(parameterized.TestCase):

  @parameterized.named_parameters(CASES)
  @pytest.mark.slow
  def test_normalized_invariant_and_sampled_exactly(self, family, hilbert,
                                                    dtype, names, size):
    model = build_model(family, hilbert, dtype, names)
    self.assertEqual(model.group.size, size)
    params, _ = model.init(jax.random.key(0))
    x = hilbert.all_states()
    log_psi = jax.jit(model.log_psi)(params, x)
    probs = np.exp(2 * np.asarray(log_psi.real))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    self.assertGreater(float(np.std(np.log(probs))), 1e-3)
    images = jax.jit(model.group.apply)(x)
    for g in range(size):  # psi_G(g s) = psi_G(s), phase included
      np.testing.assert_allclose(jax.jit(model.log_psi)(params, images[g]),
                                 log_psi, rtol=0, atol=1e-10, err_msg=f"g={g}")
    # The base is not symmetric: the wrapper does the work.
    base = np.asarray(jax.jit(model.base.log_psi)(params, x).real)
    self.assertGreater(np.abs(np.asarray(
        jax.jit(model.base.log_psi)(params, images[1]).real) - base).max(),
        1e-6)
    # Exact sampling: chi-squared against |psi_G|^2 (70 or 64 states, each
    # expected ~70 times), three repeats combined.
    powers = hilbert.local_size ** np.arange(hilbert.size - 1, -1, -1)
    index = lambda s: np.searchsorted(
        np.asarray(hilbert.states_to_indices(x)) @ powers,
        np.asarray(hilbert.states_to_indices(s)) @ powers)
    p_values = []
    for repeat in range(3):
      s, log_prob = sampler.sample(model, params, jax.random.key(10 + repeat),
                                   5_000, return_log_prob=True)
      self.assertTrue(hilbert.contains(s).all())
      counts = np.bincount(index(s), minlength=len(probs))
      p_values.append(helpers.chi_squared_p_value(counts, probs))
    self.assertGreater(stats.combine_pvalues(p_values).pvalue, 0.01,
                       msg=f"p-values {p_values}")
    np.testing.assert_allclose(
        log_prob, 2 * jax.jit(model.log_psi)(params, s).real, rtol=0,
        atol=1e-10)

  def test_gradient_is_exact(self):
    """The estimator with every state and its exact weight equals the
    derivative of the exact energy <psi_G|H|psi_G>."""
    ham = hamiltonians.Heisenberg(lattice_lib.square(2, 4), marshall_sign=True)
    hilbert = zoo.spin_half((2, 4), total_sz=0)
    model = build_model("gru", hilbert, jnp.complex128,
                        "translations,spin_flip")
    params, _ = model.init(jax.random.key(3))
    x = hilbert.all_states()
    h = ham.to_sparse(sector=0).toarray()  # in the sector's bit order

    def energy(params):
      log_psi = model.log_psi(params, x)
      # Hilbert.all_states lists the sector in the bit order of to_sparse.
      psi = jnp.exp(log_psi)
      return jnp.real(jnp.vdot(psi, h @ psi) / jnp.vdot(psi, psi))

    # Each in one compiled program (eager, every operation compiles alone).
    weights = jnp.exp(2 * jax.jit(model.log_psi)(params, x).real)
    estimate = jax.jit(lambda p, w: vmc.expect_and_grad(
        model.log_psi, ham, p, x, weights=w))(params, weights)
    np.testing.assert_allclose(estimate.stats.mean, jax.jit(energy)(params),
                               rtol=1e-10)
    exact = jax.jit(jax.grad(energy))(params)
    # Complex leaves: the estimator's convention is d/da + i d/db, the
    # conjugate of what jax.grad gives for a real function.
    exact = jax.tree.map(jnp.conj, exact)
    for got, want in zip(jax.tree.leaves(estimate.gradient),
                         jax.tree.leaves(exact)):
      np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)

  def test_a_model_of_the_same_contract(self):
    # A wrapper, not a subclass: it meets the protocol the sampler, the VMC
    # and the plugin ask for, draws through its base, and has no
    # conditionals of its own to refuse.
    model = build_model("conv1d", zoo.spin_half(6), jnp.float64, "reflections",
                        pbc=False)
    self.assertIsInstance(model, zoo.models.Model)
    self.assertNotIsInstance(model, zoo.Wavefunction)
    self.assertIs(model.sampling_base, model.base)
    self.assertIs(model.base.sampling_base, model.base)
    self.assertFalse(hasattr(model, "conditionals"))
    with self.assertRaisesRegex(checks.FieldError, "autoregressive"):
      symmetric.Symmetrized(model, model.group)

  def test_from_a_config(self):
    cfg = registry.get_config(
        "fast_gru:L=4,symmetries=translations:point_group,total=0")
    model = build.model(cfg)
    self.assertIsInstance(model, symmetric.Symmetrized)
    self.assertEqual(model.group.size, 16 * 8)


class GroupTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("chain_translations", (6,), True, "translations", 6),
      ("chain_reflections", (6,), False, "reflections", 2),
      ("chain_point_group", (6,), False, "point_group", 2),
      ("square_point_group", (4, 4), False, "point_group", 8),
      ("square_rotations", (3, 3), False, "rotations", 4),
      ("rectangle_point_group", (2, 4), False, "point_group", 4),
      ("space_group", (4, 4), True, "translations,point_group", 128),
      ("with_spin_flip", (4,), True, "translations,spin_flip", 8),
  )
  def test_sizes_and_closure(self, shape, pbc, names, size):
    group = symmetric.symmetry_group(names, zoo.spin_half(shape), pbc)
    self.assertEqual(group.size, size)
    # Closed under composition: every product is an element.
    elements = {(tuple(p), f) for p, f in zip(group.permutations, group.flips)}
    for p1, f1 in zip(group.permutations, group.flips):
      for p2, f2 in zip(group.permutations, group.flips):
        self.assertIn((tuple(p1[p2]), bool(f1 != f2)), elements)

  def test_lattice_symmetries_keep_bonds(self):
    lat = lattice_lib.square(4, 4)
    bonds = {frozenset(b) for b in lat.bonds(1).tolist()}
    group = symmetric.symmetry_group("translations,point_group",
                                     zoo.spin_half((4, 4)), True)
    for perm in group.permutations:
      self.assertEqual({frozenset((perm[i], perm[j])) for i, j in bonds},
                       bonds)

  @parameterized.named_parameters(
      ("rotated_rectangle", (2, 4), True, "rotations", None,
       "symmetries='rotations': is not a symmetry of a 2 x 4 rectangle"),
      ("open_translations", (4,), False, "translations", None,
       "symmetries='translations': need periodic boundaries"),
      ("flip_in_a_sector", (4,), True, "spin_flip", 1,
       "symmetries='spin_flip': maps the sector of total 2 to that of -2"),
      ("unknown", (4,), True, "glide", None,
       "symmetries='glide': must be one of 'translations'"),
      ("chain_rotations", (4,), True, "rotations", None,
       "is not a symmetry of a chain"),
  )
  def test_bad_symmetries(self, shape, pbc, names, total_sz, message):
    with self.assertRaisesRegex(ValueError, message):
      symmetric.symmetry_group(names, zoo.spin_half(shape, total_sz), pbc)
    fock = zoo.fock(2, 4)
    with self.assertRaisesRegex(ValueError, "needs local states symmetric"):
      symmetric.symmetry_group("spin_flip", fock, True)


if __name__ == "__main__":
  absltest.main()

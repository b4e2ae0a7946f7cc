"""Tests for zoo.vmc: estimators against exact sums, SR, minSR, the step."""

import dataclasses
import functools

from absl.testing import absltest
from absl.testing import parameterized
import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import optax

import zoo
import zoo.models
from tests import helpers
from zoo import sampler
from zoo import vmc
from zoo.models import arnn
from zoo.models import symmetric
from zoo.physics import exact
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib


DTYPES = (
    dict(testcase_name="real", dtype=jnp.float64),
    dict(testcase_name="complex", dtype=jnp.complex128),
)


# The tiers (tests/conftest.py): complex cases day to day, their real twins
# in the slow tier (complex parameters exercise the same code and more).
REAL = lambda case: case["dtype"] == jnp.float64


def _tfim(n_sites=6, h=1.0):
  return hamiltonians.TransverseFieldIsing(lattice_lib.chain(n_sites, True),
                                           h=h)


def _model(hilbert, dtype, **fields):
  fields = dict(dict(layers=2, features=3, kernel_size=3), **fields)
  return zoo.FastARNNConv1D(hilbert, param_dtype=dtype, **fields)


def _setup(dtype, hamiltonian=None, seed=1):
  """Model, params, all states [S, N] and their exact probabilities [S]."""
  ham = hamiltonian or _tfim()
  model = _model(ham.hilbert, dtype)
  params, _ = model.init(jax.random.key(seed))
  states = ham.hilbert.all_states()
  probs = jax.jit(lambda p, x: jnp.exp(2 * model.log_psi(p, x).real))(
      params, states)
  return ham, model, params, states, probs


def _exact_energy_fn(model, ham, states):
  """params -> <psi|H|psi> / <psi|psi> by a dense sum over all states."""
  matrix = jnp.asarray(ham.to_dense())

  @jax.jit
  def energy(params):
    psi = jnp.exp(model.log_psi(params, states))
    return (jnp.vdot(psi, matrix @ psi) / jnp.vdot(psi, psi)).real

  return energy


def _max_abs_diff(a, b):
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)))


class EstimatorTest(chex.TestCase, parameterized.TestCase):

  @chex.variants(with_jit=True)
  @helpers.grid(DTYPES, slow=REAL)
  def test_gradient_is_exact_with_exact_weights(self, dtype):
    self.check_gradient_is_exact_with_exact_weights(dtype)

  @chex.variants(without_jit=True)
  @parameterized.named_parameters(*DTYPES)
  @pytest.mark.slow
  def test_gradient_is_exact_with_exact_weights_unjitted(self, dtype):
    self.check_gradient_is_exact_with_exact_weights(dtype)

  def check_gradient_is_exact_with_exact_weights(self, dtype):
    # Heisenberg has flip-flop terms, so a sign structure the model must
    # learn; TFIM covers single flips.
    for ham in (_tfim(), hamiltonians.Heisenberg(lattice_lib.chain(6, True))):
      _, model, params, states, probs = _setup(dtype, ham)
      estimate = self.variant(lambda p, x, w: vmc.expect_and_grad(
          model.log_psi, ham, p, x, weights=w))(params, states, probs)
      energy_fn = _exact_energy_fn(model, ham, states)
      # jax.grad of a real function of complex leaves is d/da - i d/db; the
      # estimator returns d/da + i d/db, the convention of optax.
      expected = jax.tree.map(jnp.conj, jax.jit(jax.grad(energy_fn))(params))
      np.testing.assert_allclose(estimate.stats.mean, energy_fn(params),
                                 rtol=1e-12)
      chex.assert_trees_all_close(estimate.gradient, expected, atol=1e-10,
                                  rtol=1e-10)
      chex.assert_trees_all_equal_dtypes(estimate.gradient, params)

  @helpers.grid(DTYPES, slow=REAL)
  def test_free_energy_gradient_is_exact(self, dtype):
    """With shift = T log p, the estimator gives the gradient of the free
    energy F = <E> - T S, S = -sum_x p log p (variational annealing)."""
    ham = hamiltonians.Heisenberg(lattice_lib.chain(6, True))
    _, model, params, states, probs = _setup(dtype, ham)
    temperature = 0.7
    energy_fn = _exact_energy_fn(model, ham, states)

    def free_energy(params):
      log_p = 2 * model.log_psi(params, states).real
      return energy_fn(params) + temperature * jnp.sum(jnp.exp(log_p) * log_p)

    log_p = 2 * model.log_psi(params, states).real
    estimate = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                   weights=probs, shift=temperature * log_p)
    expected = jax.tree.map(jnp.conj, jax.jit(jax.grad(free_energy))(params))
    chex.assert_trees_all_close(estimate.gradient, expected, atol=1e-10,
                                rtol=1e-10)
    # The statistics stay those of the energy.
    np.testing.assert_allclose(estimate.stats.mean, energy_fn(params),
                               rtol=1e-12)

  @helpers.grid(DTYPES, slow=REAL)
  def test_gradient_is_exact_in_a_sector(self, dtype):
    # A model of the S^z = 0 sector: the estimator over the sector's states
    # equals <psi|H|psi> and its gradient from the matrix restricted to them.
    ham = hamiltonians.Heisenberg(lattice_lib.chain(6, True))
    model = _model(zoo.spin_half(6, total_sz=0), dtype)
    params, _ = model.init(jax.random.key(3))
    states = model.hilbert.all_states()
    rows = np.flatnonzero(np.asarray(ham.hilbert.all_states()).sum(-1) == 0)
    matrix = jnp.asarray(ham.to_dense()[np.ix_(rows, rows)])

    def energy_fn(p):
      psi = jnp.exp(model.log_psi(p, states))
      return (jnp.vdot(psi, matrix @ psi) / jnp.vdot(psi, psi)).real

    probs = jnp.exp(2 * model.log_psi(params, states).real)
    np.testing.assert_allclose(probs.sum(), 1, rtol=1e-12)
    estimate = jax.jit(lambda p, x, w: vmc.expect_and_grad(
        model.log_psi, ham, p, x, weights=w))(params, states, probs)
    np.testing.assert_allclose(estimate.stats.mean, energy_fn(params),
                               rtol=1e-12)
    expected = jax.tree.map(jnp.conj, jax.jit(jax.grad(energy_fn))(params))
    chex.assert_trees_all_close(estimate.gradient, expected, atol=1e-10,
                                rtol=1e-10)

  @helpers.grid(DTYPES, slow=REAL)
  def test_gradient_descent_step_lowers_the_energy(self, dtype):
    ham, model, params, states, probs = _setup(dtype)
    energy_fn = _exact_energy_fn(model, ham, states)
    estimate = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                   weights=probs)
    optimizer = optax.sgd(1e-3)
    updates, _ = optimizer.update(estimate.gradient, optimizer.init(params))
    new_params = optax.apply_updates(params, updates)
    # First order: the decrease is lr |G|^2 in real coordinates.
    coords = vmc.RealCoordinates(params)
    expected = 1e-3 * jnp.sum(coords.flatten(estimate.gradient)**2)
    decrease = energy_fn(params) - energy_fn(new_params)
    self.assertGreater(decrease, 0)
    np.testing.assert_allclose(decrease, expected, rtol=1e-2)

  @helpers.grid(DTYPES, slow=REAL)
  def test_sampled_gradient_approaches_the_exact_one(self, dtype):
    ham, model, params, states, probs = _setup(dtype)
    x = zoo.sampler.sample(model, params, jax.random.key(3), 4096)
    estimate = vmc.expect_and_grad(model.log_psi, ham, params, x)
    exact_estimate = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                         weights=probs)
    coords = vmc.RealCoordinates(params)
    sampled = coords.flatten(estimate.gradient)
    expected = coords.flatten(exact_estimate.gradient)
    # A loose, seed-fixed check that the sampled estimator is unbiased.
    cosine = jnp.dot(sampled, expected) / (
        jnp.linalg.norm(sampled) * jnp.linalg.norm(expected))
    self.assertGreater(cosine, 0.95)
    self.assertLess(abs(estimate.stats.mean - exact_estimate.stats.mean),
                    5 * estimate.stats.error)

  @helpers.grid(DTYPES, slow=REAL)
  def test_chunked_equals_unchunked(self, dtype):
    ham, model, params, states, probs = _setup(dtype)
    whole = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                weights=probs)
    # 64 states in chunks of 7: the last chunk is padded.
    chunked = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                  weights=probs, chunk_size=7)
    chex.assert_trees_all_close(chunked, whole, atol=1e-12, rtol=1e-12)
    jac = vmc.centred_jacobian(model.log_psi, params, states, probs,
                               batch_size=64)
    jac_batched = vmc.centred_jacobian(model.log_psi, params, states, probs,
                                       batch_size=7)
    np.testing.assert_allclose(jac_batched, jac, atol=1e-12)
    matvec = vmc.centred_matvec(model.log_psi, params, states, probs,
                                chunk_size=7)
    v = jax.random.normal(jax.random.key(0), (jac.shape[1],))
    np.testing.assert_allclose(matvec(v), jac.T @ (jac @ v), atol=1e-12)

  def test_energy_stats(self):
    e_loc = jax.random.normal(jax.random.key(0), (100,)) + 1j * 0.1
    stats = vmc.energy_stats(e_loc)
    chex.assert_shape(stats, ((),) * 3)
    e = np.asarray(e_loc)
    np.testing.assert_allclose(stats.mean, e.real.mean())
    np.testing.assert_allclose(stats.variance, np.var(e.real))
    np.testing.assert_allclose(stats.error, np.sqrt(np.var(e.real) / 100))
    # Equal weights change nothing.
    chex.assert_trees_all_close(vmc.energy_stats(e_loc, jnp.full(100, 3.0)),
                                stats)

  def test_bad_inputs_raise(self):
    ham, model, params, states, probs = _setup(jnp.float64)
    with self.assertRaisesRegex(ValueError, "chunk_size"):
      vmc.expect_and_grad(model.log_psi, ham, params, states, chunk_size=0)
    with self.assertRaisesRegex(ValueError, "weights"):
      vmc.expect_and_grad(model.log_psi, ham, params, states,
                          weights=probs[:3])
    with self.assertRaisesRegex(ValueError, r"x must have shape \[B, N\]"):
      vmc.expect_and_grad(model.log_psi, ham, params, states[0])


def _reference_natural_gradient(model, params, x, weights, local_energies,
                                diag_shift):
  """(S + shift)^-1 F by numpy, from a forward-mode jacobian."""
  coords = vmc.RealCoordinates(params)
  log_psi = lambda theta: model.log_psi(coords.unflatten(theta), x)
  o = np.asarray(jax.jit(jax.jacfwd(log_psi))(coords.flatten(params)))  # [B, P]
  w = np.asarray(weights) / np.sum(weights)
  e = np.asarray(local_energies)
  o_centred = o - w @ o
  s = np.real(o_centred.conj().T @ (w[:, None] * o_centred))
  f = np.real(o_centred.conj().T @ (w * (e - w @ e)))
  return np.linalg.solve(s + diag_shift * np.eye(len(f)), f), f


class SRTest(parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  @pytest.mark.slow  # the solvers' own day-to-day check: minSR == SR
  def test_sr_matches_dense_numpy_solve(self, dtype):
    ham, model, params, states, probs = _setup(dtype)
    estimate = jax.jit(lambda p: vmc.expect_and_grad(
        model.log_psi, ham, p, states, weights=probs))(params)
    expected, force = _reference_natural_gradient(
        model, params, states, probs, estimate.local_energies, 1e-3)
    coords = vmc.RealCoordinates(params)
    np.testing.assert_allclose(coords.flatten(estimate.gradient) / 2, force,
                               atol=1e-12)
    dense = vmc.make_sr_problem(model.log_psi, params, states,
                                estimate.local_energies, weights=probs)
    matrix_free = vmc.make_sr_problem(model.log_psi, params, states,
                                      estimate.local_energies, weights=probs,
                                      dense=False)
    scale = np.max(np.abs(expected))
    for solver, problem, tol in (("cholesky", dense, 1e-8),
                                 ("cg", dense, 1e-5),
                                 ("cg", matrix_free, 1e-5)):
      delta = vmc.natural_gradient(problem, jnp.asarray(force), diag_shift=1e-3,
                                   solver=solver, cg_tol=1e-12)
      np.testing.assert_allclose(delta / scale, expected / scale, atol=tol,
                                 err_msg=solver)

  def test_symmetric_product_equals_full_product(self):
    # Rows that make 4, 7 and 8 blocks of unequal sizes, and few rows.
    rng = np.random.default_rng(0)
    for rows in (100, 517, 1000, 1100):
      a = jnp.asarray(rng.normal(size=(rows, 37)))
      np.testing.assert_allclose(vmc.sr.symmetric_product(a), a @ a.T,
                                 rtol=0, atol=1e-12, err_msg=str(rows))

  @helpers.grid(DTYPES, slow=REAL)
  def test_minsr_matches_sr(self, dtype):
    ham = _tfim()
    model = _model(ham.hilbert, dtype, features=6)
    params, _ = model.init(jax.random.key(2))
    # Fewer samples than parameters: the sample space is the smaller one.
    x = zoo.sampler.sample(model, params, jax.random.key(0), 20)
    e_loc = jax.jit(lambda p, x: ham.local_energy(model.log_psi, p, x))(
        params, x)
    problem = vmc.make_sr_problem(model.log_psi, params, x, e_loc)
    rows, n_params = problem.jacobian.shape
    self.assertLess(rows, n_params)
    self.assertEqual(vmc.sr.resolve_solver("auto", problem), "minsr")
    force = problem.jacobian.T @ problem.residual
    expected, _ = _reference_natural_gradient(
        model, params, x, jnp.ones(20), e_loc, 1e-2)
    for solver in ("cholesky", "minsr", "auto"):
      delta = vmc.natural_gradient(problem, force, diag_shift=1e-2,
                                   solver=solver)
      np.testing.assert_allclose(delta, expected, rtol=1e-7, atol=1e-9,
                                 err_msg=solver)

  @parameterized.named_parameters(*DTYPES)
  @pytest.mark.slow  # the solvers' own day-to-day check: minSR == SR
  def test_masked_columns_left_out_change_nothing(self, dtype):
    ham = _tfim()
    hilbert2d = zoo.spin_half((2, 3))
    for model in (zoo.FastARNNDense(ham.hilbert, layers=2, features=3,
                                    param_dtype=dtype),
                  zoo.ARNNConv2D(hilbert2d, layers=2, features=3,
                                 kernel_size=(2, 3), param_dtype=dtype)):
      params, _ = model.init(jax.random.key(2))
      x = zoo.sampler.sample(model, params, jax.random.key(0), 40)
      e_loc = jnp.asarray(np.random.default_rng(0).normal(size=40))
      # Each in one compiled program (eager, every operation compiles alone).
      problem = lambda p, **live: vmc.make_sr_problem(model.log_psi, p, x,
                                                      e_loc, **live)
      live_parameters = dict(live=model.live_parameters())
      full_jacobian, residual = jax.jit(
          lambda p: (lambda q: (q.jacobian, q.residual))(problem(p)))(params)
      live_jacobian = jax.jit(
          lambda p: problem(p, **live_parameters).jacobian)(params)
      columns = vmc.sr.live_columns(params, model.live_parameters())
      # The columns left out are zero for every sample: masked entries.
      dropped = np.setdiff1d(np.arange(full_jacobian.shape[1]), columns)
      self.assertGreater(dropped.size, 0)
      np.testing.assert_array_equal(full_jacobian[:, dropped], 0)
      np.testing.assert_array_equal(full_jacobian[:, columns], live_jacobian)
      force = full_jacobian.T @ residual
      solve = lambda solver, **live: jax.jit(lambda p: vmc.natural_gradient(
          problem(p, **live), force, diag_shift=1e-2, solver=solver,
          cg_tol=1e-12))(params)
      for solver in ("cholesky", "minsr", "cg"):
        np.testing.assert_allclose(
            solve(solver, **live_parameters), solve(solver), rtol=0,
            atol=1e-9, err_msg=f"{model.name} {solver}")

  @parameterized.named_parameters(*DTYPES)
  @pytest.mark.slow  # the solvers' own day-to-day check: minSR == SR
  def test_gram_equals_the_jacobians_product(self, dtype):
    # A A^T from the dense layers' Gram factors, and A^T c by one reverse
    # pass, against the per-sample jacobian: with biases (complex) and
    # without (real), weighted samples, row blocks and chunks that do not
    # divide the rows.
    ham = _tfim()
    use_bias = dtype == jnp.complex128
    model = zoo.FastARNNDense(ham.hilbert, layers=3, features=3,
                              use_bias=use_bias, param_dtype=dtype)
    probe = model.layer_probe()
    self.assertTrue(probe.dense)
    self.assertLen(probe.layers, 3)
    params, _ = model.init(jax.random.key(2))
    x = zoo.sampler.sample(model, params, jax.random.key(0), 40)
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.uniform(size=40))
    e_loc = jnp.asarray(rng.normal(size=40))
    jac = vmc.sr.centred_jacobian(model.log_psi, params, x, w)
    for row_block, chunk_size in ((16, None), (1024, 7)):
      np.testing.assert_allclose(
          vmc.sr.centred_gram(probe, params, x, w, row_block=row_block,
                              chunk_size=chunk_size),
          jac @ jac.T, rtol=0, atol=1e-12)
    c = jnp.asarray(rng.normal(size=jac.shape[0]))
    np.testing.assert_allclose(
        vmc.sr.centred_transpose(model.log_psi, params, x, w)(c),
        jac.T @ c, rtol=0, atol=1e-12)
    full = vmc.make_sr_problem(model.log_psi, params, x, e_loc, weights=w)
    force = full.jacobian.T @ full.residual
    expected = vmc.natural_gradient(full, force, diag_shift=1e-2,
                                    solver="minsr")
    for solver in ("auto", "minsr"):
      gram = vmc.make_sr_problem(model.log_psi, params, x, e_loc,
                                 weights=w, probe=probe, solver=solver)
      self.assertIsNone(gram.jacobian)
      np.testing.assert_allclose(
          vmc.natural_gradient(gram, force, diag_shift=1e-2,
                               solver=solver),
          expected, rtol=0, atol=1e-12, err_msg=solver)
    with self.assertRaisesRegex(ValueError, "solver='cholesky'"):
      vmc.natural_gradient(gram, force, diag_shift=1e-2, solver="cholesky")
    # Other solvers get the form they use.
    self.assertIsNotNone(vmc.make_sr_problem(
        model.log_psi, params, x, e_loc, probe=probe,
        solver="cholesky").jacobian)
    self.assertIsNotNone(vmc.make_sr_problem(
        model.log_psi, params, x, e_loc, probe=probe, solver="cg").matvec)

  PROBED_CASES = list(
      dict(testcase_name=name, build=build, dtype=dtype)
      for name, build, dtype in (
          ("conv1d_netket_taps_no_bias_real", lambda h, _, d: zoo.ARNNConv1D(
              h, layers=2, features=2, kernel_size=3, first_taps="netket",
              use_bias=False, param_dtype=d), jnp.float64),
          ("gru_open_no_bias_complex", lambda _, h2, d: zoo.ARNNGRU(
              h2, layers=2, features=3, pbc=False, use_bias=False,
              param_dtype=d), jnp.complex128),
          ("symmetrized_gru_complex", lambda _, h2, d: symmetric.Symmetrized(
              zoo.FastARNNGRU(h2, layers=1, features=3, param_dtype=d),
              symmetric.symmetry_group("translations,spin_flip", h2,
                                       pbc=True)), jnp.complex128),
          ("symmetrized_dense_real", lambda h, _, d: symmetric.Symmetrized(
              zoo.FastARNNDense(h, layers=2, features=3, param_dtype=d),
              symmetric.symmetry_group("reflections", h, pbc=True)),
           jnp.float64),
      ) + tuple(
          # Every family of the table, dtypes alternating, every other one
          # in the S^z = 0 sector.
          (f"table_{family}_{'sector_' if i % 2 else ''}"
           f"{('real', 'complex')[(i // 2) % 2]}",
           lambda h, h2, d, family=family, i=i: helpers.build(
               family, True, zoo.spin_half(
                   (h2 if family in helpers.TWO_D else h).shape,
                   total_sz=0 if i % 2 else None), d),
           (jnp.float64, jnp.complex128)[(i // 2) % 2])
          for i, family in enumerate(helpers.SLOW_FAST)))

  # Day to day: the GRU's scan and a symmetrized model; the rest slow.
  @helpers.grid(PROBED_CASES, slow=lambda case: case["testcase_name"] not in (
      "gru_open_no_bias_complex", "symmetrized_gru_complex"))
  def test_probed_jacobian_equals_reverse_passes(self, build, dtype):
    # Every layer's sample gradients (masked dense and convolutions with
    # dilations, NetKet's taps, biases or not, 1D and 2D; the GRU's gates
    # inside its scan and its readout; the transformer's projections and
    # norms; the gated blocks), of every family, plain and symmetrized,
    # weighted and centred as A, against one reverse pass per sample.
    model = build(_tfim().hilbert, zoo.spin_half((2, 3)), dtype)
    probe = model.layer_probe()
    self.assertIsNotNone(probe, model.name)
    # Away from the initial values (zero biases, the GRU's merge at its
    # mean, the transformer's start at zero); one compiled program each
    # (eager, every operation compiles alone).
    params = jax.jit(lambda key: jax.tree.map(
        lambda p: p + 0.1 * jax.random.normal(jax.random.key(3), p.shape,
                                              p.dtype),
        model.init(key)[0]))(jax.random.key(2))
    rng = np.random.default_rng(0)
    states = model.hilbert.all_states()
    x = states[rng.choice(len(states), 12, replace=False)]
    w = jnp.asarray(rng.uniform(size=12))
    live = vmc.sr.live_columns(params, model.live_parameters())
    # Every column in one chunk; the live ones (where masks zero some) in
    # chunks of 5, which do not divide the batch.
    for cols, chunk_size in ((None, None), (
        None if live is None else jnp.asarray(live), 5)):
      expected = vmc.sr.centred_jacobian(model.log_psi, params, x, w,
                                         columns=cols)
      probed = jax.jit(functools.partial(
          vmc.sr.probed_jacobian, probe, columns=cols, chunk_size=chunk_size))
      np.testing.assert_allclose(
          probed(params, x, w), expected, rtol=0, atol=1e-12,
          err_msg=f"{model.name}, columns {cols is not None}, chunks of "
          f"{chunk_size}")
    # The energy gradient from that A (what a step with SR reports) is the
    # gradient's own reverse pass.
    e_loc = jnp.asarray(rng.normal(size=12) + (
        1j * rng.normal(size=12) if jnp.iscomplexobj(
            jax.eval_shape(model.log_psi, params, x)) else 0))
    from_a = jax.jit(lambda p: vmc.sr.energy_gradient(vmc.sr.make_sr_problem(
        model.log_psi, p, x, e_loc, weights=w, solver="cholesky",
        live=model.live_parameters(), probe=probe), p))
    reverse = jax.jit(lambda p: vmc.estimators.energy_gradient(
        model.log_psi, p, x, e_loc, w))
    chex.assert_trees_all_close(from_a(params), reverse(params), rtol=0,
                                atol=1e-12)

  def test_layer_probe_needs_every_parameter_in_a_layer_with_a_rule(self):
    hilbert = zoo.spin_half(6)
    dense = zoo.FastARNNDense(hilbert, layers=2, features=3)
    self.assertTrue(dense.layer_probe().dense)
    conv = zoo.FastARNNConv1D(hilbert, layers=2, features=3, kernel_size=3)
    self.assertFalse(conv.layer_probe().dense)
    symmetrized = symmetric.Symmetrized(dense, symmetric.symmetry_group(
        "translations", hilbert, pbc=True))
    self.assertFalse(symmetrized.layer_probe().dense)  # images add up

    class LooseParameter(arnn.DenseStack):
      """A body with a parameter that no layer's rule covers."""

      def logits(self, x):
        return super().logits(x) + hk.get_parameter(
            "loose", (2,), jnp.float64, init=jnp.zeros)

    spec = dataclasses.replace(dense.spec, body=LooseParameter)
    self.assertIsNone(zoo.models.Wavefunction(spec, "loose").layer_probe())

  @parameterized.named_parameters(
      dict(testcase_name="float32", narrow=jnp.float32, wide=jnp.float64),
      dict(testcase_name="complex64", narrow=jnp.complex64,
           wide=jnp.complex128))
  def test_sr_update_in_float32_follows_float64(self, narrow, wide):
    # The same parameters and samples: local energies, the gradient, the
    # probed problem and minSR's update stay in the narrow dtype and agree
    # with the wide ones to float32's precision (its solve is in float64).
    ham = hamiltonians.Heisenberg(lattice_lib.square(2, 4, pbc=True),
                                  marshall_sign=True)
    hilbert = zoo.spin_half((2, 4), total_sz=0)
    models = {d: zoo.FastARNNGRU(hilbert, layers=2, features=4, param_dtype=d)
              for d in (narrow, wide)}
    params = models[wide].init(jax.random.key(0))[0]
    states = hilbert.all_states()
    x = states[np.random.default_rng(0).choice(len(states), 16)]
    updates = {}
    for dtype, model in models.items():
      p = jax.tree.map(lambda a: a.astype(jnp.finfo(dtype).dtype)
                       if not jnp.iscomplexobj(a) else a.astype(dtype), params)
      sr = vmc.stochastic_reconfiguration(1e-3, "minsr")

      @jax.jit
      def update(p, model=model, sr=sr):
        e_loc = vmc.local_energy.local_energies(model, ham, p, x)
        grad = vmc.estimators.energy_gradient(model.log_psi, p, x, e_loc)
        return sr.update(grad, sr.init(p), p, sr_problem=(
            lambda solver: vmc.make_sr_problem(
                model.log_psi, p, x, e_loc, solver=solver,
                probe=model.layer_probe())))[0]

      updates[dtype] = update(p)
      for leaf, like in zip(jax.tree.leaves(updates[dtype]),
                            jax.tree.leaves(p)):
        self.assertEqual(leaf.dtype, like.dtype)
    scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(updates[wide]))
    for a, b in zip(jax.tree.leaves(updates[narrow]),
                    jax.tree.leaves(updates[wide])):
      np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * scale)

  def test_transform_in_a_chain(self):
    ham, model, params, states, probs = _setup(jnp.complex128)
    estimate = vmc.expect_and_grad(model.log_psi, ham, params, states,
                                   weights=probs)
    problem = vmc.make_sr_problem(model.log_psi, params, states,
                                  estimate.local_energies, weights=probs)
    optimizer = optax.chain(vmc.stochastic_reconfiguration(1e-3, "cholesky"),
                            optax.sgd(0.1))
    state = optimizer.init(params)
    updates, _ = optimizer.update(estimate.gradient, state, params,
                                  sr_problem=problem)
    coords = vmc.RealCoordinates(params)
    delta = vmc.natural_gradient(problem, coords.flatten(estimate.gradient) / 2,
                                 diag_shift=1e-3, solver="cholesky")
    chex.assert_trees_all_close(updates, coords.unflatten(-0.1 * delta),
                                atol=1e-12)
    # A lazy problem gives the same update.
    lazy, _ = optimizer.update(estimate.gradient, state, params,
                               sr_problem=lambda solver: problem)
    chex.assert_trees_all_close(lazy, updates)
    with self.assertRaisesRegex(ValueError, "sr_problem"):
      optimizer.update(estimate.gradient, state, params)

  def test_bad_settings_raise(self):
    with self.assertRaisesRegex(ValueError, "diag_shift"):
      vmc.stochastic_reconfiguration(0.0)
    with self.assertRaisesRegex(ValueError, "solver"):
      vmc.stochastic_reconfiguration(1e-3, "lu")
    with self.assertRaisesRegex(ValueError, "cg_maxiter"):
      vmc.stochastic_reconfiguration(1e-3, cg_maxiter=0)


class TrainTest(parameterized.TestCase):

  def test_sr_run_approaches_exact_energy(self):
    ham = _tfim(6)
    model = _model(ham.hilbert, jnp.float64, features=4, kernel_size=6)
    optimizer = vmc.make_optimizer("sgd", 0.05, sr=dict(diag_shift=1e-2))
    run = vmc.make_vmc(model, ham, optimizer, n_samples=256)
    state = run.init(jax.random.key(0))
    state, history = run.run(state, 100)
    chex.assert_shape(history, ((100,),) * len(vmc.StepStats._fields))
    chex.assert_tree_all_finite(history)
    self.assertEqual(int(state.step), 100)
    e0 = exact.ground_state_energy(ham, cache=False)
    final = float(jnp.mean(history.energy[-10:]))
    self.assertLess(final, float(history.energy[0]) - 5)
    self.assertLess(abs(final - e0) / abs(e0), 0.01)
    # The variance falls towards zero, that of an eigenstate.
    self.assertLess(float(jnp.mean(history.variance[-10:])),
                    0.1 * float(history.variance[0]))

  def test_a_read_shorter_than_its_length_takes_the_same_steps(self):
    ham = _tfim(4)
    model = _model(ham.hilbert, jnp.float64, features=2, kernel_size=4)
    run = vmc.make_vmc(model, ham, vmc.make_optimizer(
        "sgd", 0.05, sr=dict(diag_shift=1e-2)), n_samples=32)
    start = run.init(jax.random.key(0))
    state, stats = run.run(start, 3)
    within, padded = run.run(start, 3, length=5)
    chex.assert_trees_all_close(within.params, state.params, rtol=1e-12)
    chex.assert_trees_all_equal(jax.random.key_data(within.key),
                                jax.random.key_data(state.key))
    self.assertEqual(int(within.step), 3)
    chex.assert_shape(padded, ((5,),) * len(vmc.StepStats._fields))
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[:3], padded), stats,
                                rtol=1e-12)
    chex.assert_trees_all_equal(
        jax.tree.map(lambda a: a[3:], padded),
        jax.tree.map(lambda a: jnp.zeros((2,), a.dtype), stats))
    with self.assertRaisesRegex(ValueError, "n_steps=6: must be at most "
                                "length=5"):
      run.run(start, 6, length=5)

  @parameterized.named_parameters(
      dict(testcase_name="adam_real", dtype=jnp.float64, name="adam", sr=None),
      dict(testcase_name="sgd_cg_complex", dtype=jnp.complex128, name="sgd",
           sr=dict(diag_shift=1e-2, solver="cg")),
  )
  @pytest.mark.slow
  def test_short_run_lowers_the_energy(self, dtype, name, sr):
    ham = _tfim(6)
    model = _model(ham.hilbert, dtype)
    optimizer = vmc.make_optimizer(name, 0.02 if sr is None else 0.05, sr=sr)
    run = vmc.make_vmc(model, ham, optimizer, n_samples=128)
    _, history = run.run(run.init(jax.random.key(0)), 30)
    self.assertLess(float(jnp.mean(history.energy[-5:])),
                    float(history.energy[0]) - 3)

  @pytest.mark.slow
  def test_step_is_independent_of_chunk_size(self):
    ham = _tfim(6)
    model = _model(ham.hilbert, jnp.complex128)
    optimizer = vmc.make_optimizer("sgd", 0.05, sr=dict(diag_shift=1e-2))
    whole = vmc.make_vmc(model, ham, optimizer, n_samples=50)
    chunked = vmc.make_vmc(model, ham, optimizer, n_samples=50, chunk_size=16)
    state = whole.init(jax.random.key(0))
    new_whole, stats_whole = whole.step(state)
    new_chunked, stats_chunked = chunked.step(state)
    chex.assert_shape(stats_whole, ((),) * len(vmc.StepStats._fields))
    chex.assert_trees_all_close(stats_chunked, stats_whole, atol=1e-10)
    chex.assert_trees_all_close(new_chunked.params, new_whole.params,
                                atol=1e-10)

  def test_make_optimizer(self):
    params = {"w": jnp.ones(3)}
    for name in vmc.OPTIMIZERS:
      optimizer = vmc.make_optimizer(name, 1e-2)
      optimizer.update(params, optimizer.init(params), params)
    optimizer = vmc.make_optimizer(
        "adam", vmc.make_schedule("cosine", 1e-2, steps=10))
    optimizer.update(params, optimizer.init(params), params)
    with self.assertRaisesRegex(ValueError, "name='lbfgs-ish': must be one of"):
      vmc.make_optimizer("lbfgs-ish", 1e-2)
    with self.assertRaisesRegex(ValueError, "learning_rate=-1.0: must be"):
      vmc.make_optimizer("sgd", -1.0)
    with self.assertRaisesRegex(ValueError, "shift=0.001: is not a known"):
      vmc.make_optimizer("sgd", 1e-2, sr=dict(shift=1e-3))
    with self.assertRaisesRegex(ValueError, "sr.diag_shift=0.0: must be"):
      vmc.make_optimizer("sgd", 1e-2, sr=dict(diag_shift=0.0))

  def test_annealing(self):
    temperature = vmc.make_temperature(2.0, 10)
    np.testing.assert_allclose([float(temperature(t)) for t in (0, 5, 10, 20)],
                               [2.0, 1.0, 0.0, 0.0])
    self.assertEqual(float(vmc.make_temperature(0.0, 0)(3)), 0.0)
    with self.assertRaisesRegex(ValueError, "temperature=-1.0: must be"):
      vmc.make_temperature(-1.0, 10)
    with self.assertRaisesRegex(ValueError, "annealing_steps=0: must be a "
                                "positive integer when temperature > 0"):
      vmc.make_temperature(1.0, 0)
    ham = _tfim(6)
    model = _model(ham.hilbert, jnp.float64)
    run = vmc.make_vmc(model, ham, vmc.make_optimizer("sgd", 0.05),
                       n_samples=64, temperature=temperature)
    state, stats = run.run(run.init(jax.random.key(0)), 12)
    np.testing.assert_allclose(stats.temperature,
                               [float(temperature(t)) for t in range(12)])
    # The entropy of the samples: between 0 and N log 2.
    self.assertTrue(np.all((stats.entropy > 0)
                           & (stats.entropy < 6 * np.log(2) + 1)))
    chex.assert_tree_all_finite(state.params)

  def test_schedules(self):
    # Each starts at (or peaks at) the rate and ends at the final fraction.
    for name in vmc.SCHEDULES:
      rate = vmc.make_schedule(name, 0.1, steps=100, final_lr_fraction=0.2,
                               warmup_steps=10)
      self.assertAlmostEqual(float(rate(100)),
                             0.1 if name == "constant" else 0.02, places=12)
      peak = 10 if name == "warmup_cosine" else 0
      self.assertAlmostEqual(float(rate(peak)), 0.1, places=12)
    for kwargs, message in (
        (dict(name="sawtooth", steps=10), "schedule='sawtooth': must be one of"),
        (dict(name="cosine"), "steps=None: must be a positive integer"),
        (dict(name="cosine", steps=10, final_lr_fraction=1.5),
         "final_lr_fraction=1.5: must be a number in"),
        (dict(name="warmup_cosine", steps=10, warmup_steps=20),
         "warmup_steps=20: must be at most steps=10"),
    ):
      with self.assertRaisesRegex(ValueError, message):
        vmc.make_schedule(learning_rate=0.1, **kwargs)

  def test_sector_run_stays_in_the_sector(self):
    ham = hamiltonians.Heisenberg(lattice_lib.chain(6, True),
                                  marshall_sign=True)
    model = _model(zoo.spin_half(6, total_sz=0), jnp.float64, features=4,
                   kernel_size=6)
    optimizer = vmc.make_optimizer("sgd", 0.05, sr=dict(diag_shift=1e-2))
    run = vmc.make_vmc(model, ham, optimizer, n_samples=256)
    state, history = run.run(run.init(jax.random.key(0)), 60)
    chex.assert_tree_all_finite(history)
    e0 = exact.ground_state_energy(ham, sector=0, cache=False)
    final = float(jnp.mean(history.energy[-10:]))
    self.assertLess(abs(final - e0) / abs(e0), 0.02)
    x = sampler.sample(model, state.params, jax.random.key(1), 512)
    self.assertTrue(model.hilbert.contains(x).all())

  def test_mismatched_model_raises(self):
    ham = _tfim(6)
    with self.assertRaisesRegex(
        ValueError, "model.hilbert.total=0.0: needs a Hamiltonian that "
        "conserves S\\^z"):
      vmc.make_vmc(_model(zoo.spin_half(6, total_sz=0), jnp.float64), ham,
                   vmc.make_optimizer(), n_samples=8)
    model = _model(zoo.spin_half(8), jnp.float64)
    with self.assertRaisesRegex(ValueError, "model.hilbert=.*: must be"):
      vmc.make_vmc(model, ham, vmc.make_optimizer(), n_samples=8)
    with self.assertRaisesRegex(ValueError, "n_samples=0: must be"):
      vmc.make_vmc(_model(ham.hilbert, jnp.float64), ham,
                   vmc.make_optimizer(), n_samples=0)


if __name__ == "__main__":
  absltest.main()

"""Tests for the optimizer chain: SPRING against minSR and its least-squares
problem, Adam on the gradient or on SR's direction, clipping, the config."""

import functools
import json
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import vmc as launcher
from experiments import workdir
import zoo
from zoo import build
from zoo import checks
from zoo import registry
from zoo import vmc
from zoo.physics import exact
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.vmc import spring as spring_lib


def _tfim(n_sites=6):
  return hamiltonians.TransverseFieldIsing(lattice_lib.chain(n_sites, True),
                                           h=1.0)


@functools.lru_cache
def _problem(dtype, n_samples=12, seed=0):
  """A small model's params, gradient and SR problem, in two forms: with A,
  and with only A A^T and A^T's product (as `zoo.vmc.sr.centred_gram`
  gives for dense models). Fewer samples than parameters: minSR's regime."""
  ham = _tfim()
  model = zoo.FastARNNDense(ham.hilbert, layers=2, features=3,
                            param_dtype=dtype)
  params, _ = model.init(jax.random.key(seed))

  @jax.jit
  def problem(params):
    x = zoo.sampler.sample(model, params, jax.random.key(1), n_samples)
    e_loc = ham.local_energy(model.log_psi, params, x)
    return (vmc.energy_gradient(model.log_psi, params, x, e_loc),
            vmc.make_sr_problem(model.log_psi, params, x, e_loc))

  gradient, dense = problem(params)
  a = dense.jacobian
  gram = vmc.SRProblem(residual=dense.residual, gram=a @ a.T,
                       transpose=lambda c: a.T @ c)
  return params, gradient, dense, gram


DTYPES = (dict(testcase_name="real", dtype=jnp.float64),
          dict(testcase_name="complex", dtype=jnp.complex128))


class SpringTest(parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_decay_zero_is_minsr_exactly(self, dtype):
    params, gradient, dense, gram = _problem(dtype)
    minsr = vmc.stochastic_reconfiguration(1e-3, "minsr")
    spring = spring_lib.spring(1e-3, 0.0)
    for problem in (dense, gram):
      expected, _ = jax.jit(lambda p: minsr.update(
          gradient, minsr.init(p), p, sr_problem=problem))(params)
      spring_update = jax.jit(lambda s, p: spring.update(
          gradient, s, p, sr_problem=lambda solver: problem))
      state = spring.init(params)
      # Two steps: the second one has a previous direction to (not) reuse.
      for _ in range(2):
        got, state = spring_update(state, params)
        chex.assert_trees_all_equal(got, expected)
      self.assertGreater(float(jnp.abs(state.previous).max()), 0)

  @parameterized.named_parameters(*DTYPES)
  def test_solves_its_least_squares_problem(self, dtype):
    # (A^T A + lambda) phi = A^T e + lambda mu phi_prev: the minimum of
    # |A phi - e|^2 + lambda |phi - mu phi_prev|^2, from either problem.
    _, _, dense, gram = _problem(dtype)
    a, e = dense.jacobian, dense.residual
    shift, decay = 1e-2, 0.7
    previous = jnp.asarray(np.random.default_rng(0).normal(size=a.shape[1]))
    expected = jnp.linalg.solve(a.T @ a + shift * jnp.eye(a.shape[1]),
                                a.T @ e + shift * decay * previous)
    for name, problem in (("dense", dense), ("gram", gram)):
      phi = spring_lib.spring_direction(problem, a.T @ e, previous,
                                        diag_shift=shift, decay=decay)
      np.testing.assert_allclose(phi, expected, rtol=1e-7, atol=1e-10,
                                 err_msg=name)

  def test_run_lowers_the_energy(self):
    ham = _tfim()
    model = zoo.FastARNNDense(ham.hilbert, layers=2, features=3,
                              param_dtype=jnp.float64)
    optimizer = vmc.make_optimizer(
        "sgd", 0.05, sr=dict(method="spring", decay=0.9, diag_shift=1e-2))
    run = vmc.make_vmc(model, ham, optimizer, n_samples=64)
    _, history = run.run(run.init(jax.random.key(0)), 30)
    chex.assert_tree_all_finite(history)
    self.assertLess(float(jnp.mean(history.energy[-5:])),
                    float(history.energy[0]) - 2)


class MakeOptimizerTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.params = {"w": jnp.ones((3,)), "z": jnp.ones((2,), jnp.complex128)}
    self.gradient = {"w": jnp.asarray([3.0, 0.0, 0.0]),
                     "z": jnp.asarray([4j, 0.0])}  # norm 5

  def _update(self, optimizer):
    optimizer = optax.with_extra_args_support(optimizer)
    return optimizer.update(self.gradient, optimizer.init(self.params),
                            self.params)[0]

  def test_clipping_by_global_norm(self):
    norm = lambda tree: float(optax.tree.norm(tree))
    self.assertAlmostEqual(norm(self._update(vmc.make_optimizer("sgd", 0.1))),
                           0.5)
    gradient_clipped = self._update(vmc.make_optimizer("sgd", 0.1,
                                                       clip_norm=1.0))
    self.assertAlmostEqual(norm(gradient_clipped), 0.1)
    update_clipped = self._update(vmc.make_optimizer(
        "sgd", 0.1, clip_norm=0.2, clip="update"))
    self.assertAlmostEqual(norm(update_clipped), 0.2)
    chex.assert_trees_all_close(update_clipped,
                                jax.tree.map(lambda g: -0.04 * g,
                                             self.gradient))

  def test_adam_on_the_sr_direction(self):
    params, gradient, dense, _ = _problem(jnp.float64)
    optimizer = vmc.make_optimizer("adam", 1e-3, sr=dict(solver="minsr"),
                                   clip_norm=1.0)
    expected_chain = optax.chain(vmc.stochastic_reconfiguration(1e-3, "minsr"),
                                 optax.clip_by_global_norm(1.0),
                                 optax.adam(1e-3))
    got, _ = optimizer.update(gradient, optimizer.init(params), params,
                              sr_problem=dense)
    expected, _ = expected_chain.update(gradient, expected_chain.init(params),
                                        params, sr_problem=dense)
    chex.assert_trees_all_equal(got, expected)

  def test_bad_settings_name_the_field(self):
    for kwargs, field in (
        (dict(sr=dict(method="lbfgs")), "sr.method"),
        (dict(sr=dict(method="spring", decay=1.0)), "sr.decay"),
        (dict(sr=dict(decay=0.5)), "sr.decay"),
        (dict(sr=dict(method="spring", solver="cg")), "sr.solver"),
        (dict(clip_norm=-1.0), "clip_norm"),
        (dict(clip="params"), "clip")):
      with self.assertRaisesRegex(checks.FieldError, f"^{field}=") as caught:
        vmc.make_optimizer("sgd", 0.1, **kwargs)
      self.assertNotIn("\n", str(caught.exception))

  def test_config_fields(self):
    cfg = registry.get_config("tfim_chain_fast_dense:tiny=True")
    defaults = build.optimizer(cfg)
    cfg.optimizer.name = "adam"
    cfg.optimizer.clip_norm = 1.0
    cfg.optimizer.sr.method = "spring"
    cfg.optimizer.sr.decay = 0.9
    chain = build.optimizer(cfg)
    params = {"w": jnp.ones((4,))}
    state = chain.init(params)
    self.assertIsInstance(state[0], spring_lib.SpringState)
    self.assertLen(state, len(defaults.init(params)) + 1)  # and the clipping
    cfg.optimizer.clip = "weights"
    with self.assertRaisesRegex(checks.FieldError, "^optimizer.clip="):
      build.optimizer(cfg)

  def test_a_config_without_the_fields_keeps_its_trajectory(self):
    # A workdir's config stored before clipping and SPRING existed resumes
    # under today's config with those fields at their defaults.
    cfg = registry.get_config("tfim_chain_fast_dense:tiny=True")
    old = registry.get_config("tfim_chain_fast_dense:tiny=True")
    with old.unlocked():
      for field in build.FIELD_DEFAULTS:
        section, name = field.rpartition(".")[::2]
        del old[section][name]
    self.assertEqual(workdir.trajectory_fields(old),
                     workdir.trajectory_fields(cfg))
    cfg.optimizer.sr.method = "spring"
    self.assertNotEqual(workdir.trajectory_fields(old),
                        workdir.trajectory_fields(cfg))


class BudgetTest(absltest.TestCase):

  def test_durations(self):
    for text, seconds in (("90s", 90), ("30m", 1800), ("2h", 7200),
                          ("1h30m", 5400), ("", None)):
      self.assertEqual(checks.duration("budget", text), seconds)
    for bad in ("30", "1m2h", 5, "0s"):
      with self.assertRaisesRegex(checks.FieldError, "^budget="):
        checks.duration("budget", bad)
    cfg = registry.get_config("tfim_chain_fast_dense:tiny=True")
    cfg.vmc.budget = "30"
    with self.assertRaisesRegex(checks.FieldError, "^vmc.budget='30': "):
      build.learning_rate(cfg)

  def test_schedule_by_budget_reaches_its_end_value(self):
    rate = vmc.BudgetSchedule(vmc.make_schedule(
        "cosine", 0.1, steps=100, final_lr_fraction=0.1), 100, 60.0)
    self.assertAlmostEqual(float(rate(0, 0.0)), 0.1)
    self.assertAlmostEqual(float(rate(0, 30.0)), 0.055)  # half the budget
    self.assertAlmostEqual(float(rate(50, 0.0)), 0.055)  # or of the steps
    for step, elapsed in ((0, 60.0), (3, 500.0), (100, 0.0)):
      self.assertAlmostEqual(float(rate(step, elapsed)), 0.01)

  def test_rate_in_time_is_the_optimizer_at_that_rate(self):
    rate = vmc.BudgetSchedule(vmc.make_schedule(
        "linear", 0.1, steps=10, final_lr_fraction=0.0), 10, 100.0)
    optimizer = vmc.make_optimizer("adam", rate, clip_norm=1.0,
                                   clip="update")
    params = {"w": jnp.ones((3,))}
    gradient = {"w": jnp.asarray([1.0, -2.0, 0.5])}
    state = vmc.set_elapsed(optimizer.init(params), 25.0)
    self.assertEqual(float(vmc.elapsed_seconds(state)), 25.0)
    got, state = optimizer.update(gradient, state, params)
    expected = optax.adam(0.075).update(gradient, optax.adam(0.075).init(
        params))[0]
    chex.assert_trees_all_close(got, expected, rtol=1e-12)
    self.assertIsNone(vmc.elapsed_seconds(optax.adam(0.1).init(params)))


class BudgetRunTest(absltest.TestCase):
  """The launcher with `vmc.budget` on the tiny default experiment."""

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(prefix="budget-")
    self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
    environ = mock.patch.dict(
        os.environ, {exact.CACHE_ENV_VAR: os.path.join(self.dir, "ed")})
    environ.start()
    self.addCleanup(environ.stop)

  def _config(self, budget, steps):
    cfg = registry.get_config("tfim_chain_fast_dense:tiny=True")
    cfg.vmc.budget = budget
    cfg.vmc.steps = steps
    cfg.optimizer.schedule = "cosine"
    return cfg

  def test_stops_at_the_budget_with_a_checkpoint_and_evaluation(self):
    path = os.path.join(self.dir, "run")
    # Under a budget the first read is one step, and it (compilation
    # included) outlasts 0.5 s.
    result = launcher.train(self._config("0.5s", 1000), path)
    self.assertEqual(result.steps, 1)
    self.assertEqual([s for s, _ in workdir.checkpoints(path)], [1])
    with open(os.path.join(path, workdir.RESULT_FILE)) as f:
      self.assertEqual(json.load(f)["steps"], 1)
    self.assertTrue(np.isfinite(result.energy))

  def test_a_resumed_run_continues_its_schedule(self):
    path = os.path.join(self.dir, "run")
    prepared = launcher.prepare(self._config("1h", 4), path)
    like = jax.eval_shape(prepared.experiment.vmc.init, jax.random.key(0))
    launcher.run(prepared, stop_after=2)
    first = float(vmc.elapsed_seconds(workdir.resume(path, like).opt_state))
    self.assertGreater(first, 0)
    result = launcher.run(prepared)  # a new invocation resumes at step 2
    self.assertEqual(result.steps, 4)
    state = workdir.resume(path, like)
    self.assertEqual(int(state.step), 4)
    self.assertGreater(float(vmc.elapsed_seconds(state.opt_state)), first)
    rows = workdir.read_metrics(os.path.join(path, workdir.METRICS_FILE))
    self.assertEqual([row["step"] for row in rows], [0, 1, 2, 3])
    rates = [row["learning_rate"] for row in rows]
    self.assertEqual(rates, sorted(rates, reverse=True))
    self.assertGreaterEqual(rows[2]["wall_s"], first)


if __name__ == "__main__":
  absltest.main()

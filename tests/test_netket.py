"""zoo.netket: zoo models and the zoo's sampler inside NetKet 3.23.

Skipped when NetKet is not installed (`pip install -e '.[netket]'`; the
README's test command installs it). NetKet's conventions, as these tests
build its operators: `nk.operator.Ising(J=-1)` is our TFIM with J = 1 (its
J multiplies +sz sz), and `nk.operator.Heisenberg(J=0.25, sign_rule=False)`
is our Heisenberg model (its J multiplies Pauli products, ours S = sigma/2).
"""

import os
import re
import subprocess
import sys
import unittest

from absl.testing import absltest, parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import hilbert as zoo_hilbert
from zoo.models.symmetric import Symmetrized, symmetry_group
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.vmc import estimators, local_energy

from tests import helpers
from tests import xla_options

try:
  import netket as nk
  import zoo.netket as zk
except ImportError:  # the extra is not installed
  nk = zk = None

N = 6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _models():
  """(name, zoo model, NetKet Hilbert space): every family, a sector, a
  symmetrized model, spin 1."""
  cases = [(f"{family}", helpers.build(family, True, zoo.spin_half(
      (2, 3) if family in helpers.TWO_D else N)), nk.hilbert.Spin(0.5, N))
           for family in helpers.SLOW_FAST]
  sector = zoo.FastARNNGRU(zoo.spin_half(N, total_sz=0), layers=1,
                         features=4, pbc=True)
  cases.append(("gru_sz0", sector, nk.hilbert.Spin(0.5, N, total_sz=0)))
  base = zoo.FastARNNConv1D(zoo.spin_half(N), layers=2, features=3,
                            kernel_size=3)
  group = symmetry_group("translations", base.hilbert, pbc=True)
  cases.append(("symmetrized", Symmetrized(base, group),
                nk.hilbert.Spin(0.5, N)))
  cases.append(("spin_one", zoo.FastARNNDense(zoo.spin_one(4), layers=2,
                                              features=3),
                nk.hilbert.Spin(1.0, 4)))
  return cases


def _state(model, hilbert, n_samples=256, seed=0, **kwargs):
  return nk.vqs.MCState(zk.Sampler(hilbert), zk.Model(model, hilbert),
                        n_samples=n_samples, seed=seed, sampler_seed=seed + 1,
                        **kwargs)


@unittest.skipIf(nk is None, "NetKet is not installed: pip install -e '.[netket]'")
@pytest.mark.slow  # NetKet compiles its own drivers and samplers
class NetKetTest(parameterized.TestCase):

  def test_log_psi_and_samples_are_the_zoo_ones(self):
    for name, model, hilbert in _models():
      with self.subTest(name):
        state = _state(model, hilbert, n_samples=64)
        samples = state.samples.reshape(-1, hilbert.size)
        self.assertEqual(samples.shape, (64, hilbert.size))
        if hilbert.constrained:
          self.assertTrue(np.all(np.asarray(hilbert.constraint(samples))))
        values = set(np.unique(np.asarray(samples)).tolist())
        self.assertLessEqual(values, set(np.asarray(hilbert.local_states)
                                         .tolist()))
        x = jnp.asarray(samples, jnp.float64)
        if name == "spin_one":  # NetKet's 2 S^z, the zoo's S^z
          x = x / 2
        np.testing.assert_allclose(state.log_value(samples),
                                   jax.jit(model.log_psi)(state.parameters, x),
                                   rtol=1e-12, atol=1e-12)

  @parameterized.named_parameters(("whole_space", None), ("sector", 0))
  def test_samples_follow_psi_squared(self, total_sz):
    model = zoo.FastARNNGRU(zoo.spin_half(N, total_sz=total_sz), layers=1,
                          features=4, pbc=True)
    hilbert = nk.hilbert.Spin(0.5, N, total_sz=total_sz)
    state = _state(model, hilbert, n_samples=8192, seed=3)
    samples = np.asarray(state.samples.reshape(-1, N))
    states = np.asarray(model.hilbert.all_states())
    index = {tuple(s): i for i, s in enumerate(states)}
    counts = np.bincount([index[tuple(s)] for s in samples],
                         minlength=len(states))
    probs = np.exp(2 * np.asarray(model.log_psi(state.parameters,
                                                jnp.asarray(states))))
    np.testing.assert_allclose(probs.sum(), 1, rtol=1e-10)
    self.assertGreater(helpers.chi_squared_p_value(counts, probs), 1e-3)

  @parameterized.named_parameters(("tfim", "tfim"), ("heisenberg", "heisenberg"))
  def test_netket_expect_is_our_estimator(self, kind):
    chain = lattice_lib.chain(8, True)
    graph = nk.graph.Chain(8, pbc=True)
    if kind == "tfim":
      hilbert = nk.hilbert.Spin(0.5, 8)
      operator = nk.operator.Ising(hilbert, graph, h=0.7, J=-1.0)
      ours = hamiltonians.TransverseFieldIsing(chain, h=0.7)
      model = zoo.FastARNNConv1D(zoo.spin_half(8), layers=2, features=3,
                                 kernel_size=3)
    else:  # in the S^z = 0 sector, which ARDirectSampler refuses
      hilbert = nk.hilbert.Spin(0.5, 8, total_sz=0)
      operator = nk.operator.Heisenberg(hilbert, graph, J=0.25,
                                        sign_rule=False)
      ours = hamiltonians.Heisenberg(chain)
      model = zoo.FastARNNGRU(zoo.spin_half(8, total_sz=0), layers=1,
                            features=4, pbc=True)
    state = _state(model, hilbert, n_samples=512)
    theirs = state.expect(operator)
    x = jnp.asarray(state.samples.reshape(-1, 8), jnp.float64)
    e_loc = local_energy.local_energies(model, ours, state.parameters, x)
    mine = estimators.energy_stats(e_loc)
    np.testing.assert_allclose(theirs.mean.real, mine.mean, rtol=1e-10)
    np.testing.assert_allclose(theirs.variance, mine.variance, rtol=1e-8)

  @parameterized.named_parameters(("vmc", "vmc"), ("vmc_sr", "vmc_sr"))
  @pytest.mark.slow
  def test_netket_drivers_run_and_lowers_the_energy(self, driver):
    hilbert = nk.hilbert.Spin(0.5, 8, total_sz=0)
    operator = nk.operator.Heisenberg(hilbert, nk.graph.Chain(8, pbc=True),
                                      J=0.25, sign_rule=True)
    model = zoo.FastARNNGRU(zoo.spin_half(8, total_sz=0), layers=1,
                          features=8, pbc=True)
    state = _state(model, hilbert, n_samples=512, seed=1)
    before = state.expect(operator).mean.real
    if driver == "vmc":
      run = nk.driver.VMC(operator, nk.optimizer.Adam(0.02),
                          variational_state=state)
    else:
      run = nk.driver.VMC_SR(operator, nk.optimizer.Sgd(0.05),
                             variational_state=state, diag_shift=1e-2)
    run.run(n_iter=30, show_progress=False)
    state.n_samples = 4096
    after = state.expect(operator)
    exact = -3.6510934  # Heisenberg chain N = 8, periodic (S = sigma/2)
    self.assertLess(after.mean.real, before - 0.5)
    self.assertGreater(after.mean.real, exact - 4 * after.error_of_mean)

  def test_netket_sr_on_every_family(self):
    # More parameters than samples: NetKet's VMC_SR takes its NTK path,
    # which evaluates the model under shard_map.
    operator = nk.operator.Ising(nk.hilbert.Spin(0.5, N),
                                 nk.graph.Chain(N), h=1.0, J=-1.0)
    for name, model, hilbert in _models():
      if hilbert.constrained or name == "spin_one":
        continue
      with self.subTest(name):
        state = _state(model, hilbert, n_samples=16)
        self.assertGreater(state.n_parameters, 16)
        run = nk.driver.VMC_SR(operator, nk.optimizer.Sgd(0.01),
                               variational_state=state, diag_shift=1e-2)
        run.run(n_iter=1, show_progress=False)
        self.assertTrue(np.isfinite(state.expect(operator).mean.real))

  @pytest.mark.slow
  def test_docs_example_runs_as_written(self):
    """docs/netket.md's first example (tests/test_docs.py leaves it to this
    test, which also checks what it reaches)."""
    with open(os.path.join(ROOT, "docs", "netket.md")) as f:
      page = f.read()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    self.assertIn("run(n_iter=50)", code)
    env = dict(os.environ, XLA_FLAGS=xla_options.without_test_options(
        os.environ.get("XLA_FLAGS")))  # it trains for a minute, as a user's
    run = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=1200, cwd=ROOT, env=env,
                         check=False)
    self.assertEqual(run.returncode, 0, run.stderr[-3000:])
    # Near the ground state of the periodic Heisenberg chain, N = 16 (the
    # example trains from a random seed: a loose bound; it printed
    # -7.1311 +- 0.0053 when measured).
    mean = float(re.search(r"(-?[\d.]+) ± ", run.stdout).group(1))
    self.assertLess(abs(mean - (-7.1422964)), 1e-2 * 7.1422964)

  @pytest.mark.slow
  def test_sharded_over_two_devices(self):
    script = """
import jax, netket as nk, zoo, zoo.netket as zk
assert jax.device_count() == 2
hi = nk.hilbert.Spin(0.5, 8, total_sz=0)
H = nk.operator.Heisenberg(hi, nk.graph.Chain(8), J=0.25)
model = zoo.FastARNNGRU(zoo.spin_half(8, total_sz=0), layers=1, features=8)
vs = nk.vqs.MCState(zk.Sampler(hi), zk.Model(model, hi), n_samples=256,
                    seed=0, sampler_seed=1)
assert len(vs.samples.sharding.device_set) == 2, vs.samples.sharding
assert (vs.samples.sum(-1) == 0).all()
before = vs.expect(H).mean.real
nk.driver.VMC_SR(H, nk.optimizer.Sgd(0.05), variational_state=vs,
                 diag_shift=1e-2).run(n_iter=20, show_progress=False)
print("energies", before, vs.expect(H).mean.real)
"""
    env = helpers.subprocess_env(2)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, timeout=900, cwd=ROOT, env=env,
                         check=False)
    self.assertEqual(run.returncode, 0, run.stderr[-3000:])
    before, after = map(float, re.search(r"energies (\S+) (\S+)",
                                         run.stdout).groups())
    self.assertLess(after, before - 0.5)

  def test_netket_own_sampler_refuses_the_sector(self):
    with self.assertRaisesRegex(ValueError, "constrained|unconstrained"):
      nk.sampler.ARDirectSampler(nk.hilbert.Spin(0.5, 8, total_sz=0))

  @parameterized.named_parameters(
      # Each convertible family real and complex, slow and fast twins
      # alternating (they share the parameters that are converted).
      ("dense", "dense", False, jnp.float64),
      ("fast_conv2d", "conv2d", True, jnp.float64),
      ("dense_complex", "dense", False, jnp.complex128),
      ("fast_conv2d_complex", "conv2d", True, jnp.complex128),
      ("conv1d", "conv1d", False, jnp.float64),
      ("fast_conv1d_dilated", "conv1d_dilated", True, jnp.float64),
      ("conv1d_complex", "conv1d", False, jnp.complex128))
  def test_weights_from_netket_give_the_same_model(self, family, fast, dtype):
    fields = dict(layers=3, features=4, param_dtype=dtype)
    if dtype == jnp.complex128:  # NetKet's reim_selu
      fields["activation"] = "selu_netket"
    if family.startswith("conv1d"):  # NetKet's first layer
      hilbert = nk.hilbert.Spin(0.5, 8)
      conv = dict(kernel_size=3, kernel_dilation=2 if "dilated" in family
                  else 1)
      theirs = (nk.models.FastARNNConv1D if fast else nk.models.ARNNConv1D)(
          hilbert=hilbert, layers=3, features=4, param_dtype=dtype, **conv)
      ours = (zoo.FastARNNConv1D if fast else zoo.ARNNConv1D)(
          zoo.spin_half(8), first_taps="netket", **conv, **fields)
    elif family == "dense":
      hilbert = nk.hilbert.Spin(0.5, N)
      theirs = (nk.models.FastARNNDense if fast else nk.models.ARNNDense)(
          hilbert=hilbert, layers=3, features=4, param_dtype=dtype)
      ours = (zoo.FastARNNDense if fast else zoo.ARNNDense)(
          zoo.spin_half(N), **fields)
    else:
      hilbert = nk.hilbert.Spin(0.5, 9)
      theirs = (nk.models.FastARNNConv2D if fast else nk.models.ARNNConv2D)(
          hilbert=hilbert, layers=3, features=4, kernel_size=(2, 3),
          param_dtype=dtype)
      ours = (zoo.FastARNNConv2D if fast else zoo.ARNNConv2D)(
          zoo.spin_half((3, 3)), kernel_size=(2, 3), **fields)
    x = hilbert.all_states().astype(np.float64)
    variables = theirs.init(jax.random.key(7), x[:2])
    params = zk.params_from_netket(ours, variables)
    np.testing.assert_allclose(ours.log_psi(params, x),
                               theirs.apply(variables, x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        ours.conditionals(params, x)[..., ::-1],
        theirs.apply(variables, x, method=theirs.conditionals),
        rtol=0, atol=1e-10)
    back = zk.params_to_netket(ours, params)
    jax.tree.map(np.testing.assert_array_equal, back,
                 jax.tree.map(np.asarray, dict(variables["params"])))

  def test_bad_input_names_the_mismatch(self):
    model = zoo.FastARNNConv1D(zoo.spin_half(N), layers=2, features=3,
                               kernel_size=3)
    with self.assertRaisesRegex(ValueError, "has 8 sites.*has 6"):
      zk.Model(model, nk.hilbert.Spin(0.5, 8))
    with self.assertRaisesRegex(ValueError, "has 3 local states"):
      zk.Model(model, nk.hilbert.Spin(1.0, N))
    with self.assertRaisesRegex(ValueError, "SumConstraint.*no sector|"
                                "constraint.*no sector"):
      zk.Model(model, nk.hilbert.Spin(0.5, N, total_sz=0))
    sector = zoo.FastARNNGRU(zoo.spin_half(N, total_sz=0), layers=1,
                           features=4)
    with self.assertRaisesRegex(ValueError, "no constraint.*total=0"):
      zk.Model(sector, nk.hilbert.Spin(0.5, N))
    with self.assertRaisesRegex(ValueError, "fixes the sum of its values to 2"):
      zk.Model(sector, nk.hilbert.Spin(0.5, N, total_sz=1))
    hilbert = nk.hilbert.Spin(0.5, N)
    with self.assertRaisesRegex(ValueError, "wrap one in zoo.netket.Model"):
      nk.vqs.MCState(zk.Sampler(hilbert), nk.models.RBM(), n_samples=16)
    with self.assertRaisesRegex(ValueError, r"\(dense, conv1d, conv2d\)"):
      zk.params_from_netket(sector, {})
    with self.assertRaisesRegex(ValueError, "first_taps='netket'"):
      zk.params_from_netket(model, {})
    with self.assertRaisesRegex(ValueError, "activation='selu_netket'"):
      zk.params_from_netket(zoo.ARNNDense(zoo.spin_half(N), layers=2,
                                          features=4,
                                          param_dtype=jnp.complex128), {})
    dense = zoo.ARNNDense(zoo.spin_half(N), layers=2, features=4)
    netket_dense = nk.models.ARNNDense(hilbert=hilbert, layers=3, features=4)
    variables = netket_dense.init(jax.random.key(0), np.ones((1, N)))
    with self.assertRaisesRegex(ValueError, "_layers_0 .. _layers_1"):
      zk.params_from_netket(dense, variables)
    wide = zoo.ARNNDense(zoo.spin_half(N), layers=3, features=5)
    with self.assertRaisesRegex(ValueError, r"_layers_0.kernel=\(6, 1, 6, 4\)"):
      zk.params_from_netket(wide, variables)

  def test_spin_one_values_map_both_ways(self):
    states = zk.local_states(nk.hilbert.Spin(1.0, 3), zoo.spin_one(3))
    x = jnp.array([[2.0, 0.0, -2.0]])
    np.testing.assert_array_equal(states.to_zoo(x, jnp.float64),
                                  [[1.0, 0.0, -1.0]])
    np.testing.assert_array_equal(
        states.to_netket(states.to_zoo(x, jnp.float64), jnp.float64), x)
    self.assertEqual(zoo_hilbert.spin_one(3, total_sz=1).total, 1.0)
    zk.local_states(nk.hilbert.Spin(1.0, 3, total_sz=1),
                    zoo.spin_one(3, total_sz=1))


if __name__ == "__main__":
  absltest.main()

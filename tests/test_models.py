"""Properties of the ARNN families: normalization, masking, fast == slow."""

import re

from absl.testing import absltest, parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from tests import helpers


# The tiers (tests/conftest.py): the day-to-day one keeps every model on
# spin 1/2 (both dtypes, both powers) and the real sector cases; the slow
# tier (marked) runs the rest of each grid and the odd architectures.
OFF_SPIN_HALF = lambda case: case["space"] != "spin_half"
MODEL_CASES = helpers.model_cases()
FAST_MODEL_CASES = helpers.model_cases(fast=True)


def cached_conditionals(model, params, x):
  """Conditionals [B, N, K] from the one-site pass, step by step in a scan
  (through the model's generation order), in site order."""

  @jax.jit
  def run(params, x):
    def step(cache, index):
      probs, cache = model.conditional(params, cache, x, index)
      return cache, probs
    _, probs = jax.lax.scan(step, model.init_cache(params, x.shape[0]),
                            jnp.arange(x.shape[1]))
    return jnp.swapaxes(probs, 0, 1)[:, np.argsort(model.order)]

  return run(params, x)


def random_states(hilbert, key, batch):
  idx = jax.random.randint(key, (batch, hilbert.size), 0, hilbert.local_size)
  return hilbert.indices_to_states(idx)


class ModelPropertiesTest(parameterized.TestCase):

  @helpers.grid(MODEL_CASES, slow=OFF_SPIN_HALF)
  def test_normalized_over_whole_space(self, family, fast, space, dtype, machine_pow):
    model = helpers.build(family, fast, space, dtype, machine_pow)
    params, _ = model.init(jax.random.key(1))
    x = model.hilbert.all_states()
    log_psi = jax.jit(model.log_psi)(params, x)
    chex.assert_shape(log_psi, (model.hilbert.n_states,))
    self.assertEqual(jnp.iscomplexobj(log_psi), jnp.iscomplexobj(jnp.zeros((), dtype)))
    total = jnp.sum(jnp.exp(machine_pow * log_psi.real))
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    # Conditionals are probability rows, and the model is not trivially uniform.
    probs = jax.jit(model.conditionals)(params, x[:64])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
    self.assertGreater(float(jnp.std(log_psi.real)), 1e-3)

  @helpers.grid(MODEL_CASES, slow=OFF_SPIN_HALF)
  def test_autoregressive_masking(self, family, fast, space, dtype, machine_pow):
    model = helpers.build(family, fast, space, dtype, machine_pow)
    params, _ = model.init(jax.random.key(2))
    hilbert = model.hilbert
    rng = np.random.default_rng(3)
    n, batch = hilbert.size, 16
    values = np.asarray(hilbert.local_states)
    x = values[rng.integers(0, hilbert.local_size, (batch, n))]
    order = model.order  # the site of each generation step
    # Copy j of the batch has the sites of steps >= j redrawn; copy n the
    # sites of steps < n - 1 instead, to show the last conditional does
    # depend on the past.
    changed = np.repeat(x[None], n + 1, axis=0)  # [n + 1, batch, N]
    for j in range(n):
      changed[j][:, order[j:]] = values[
          rng.integers(0, hilbert.local_size, (batch, n - j))]
    changed[n][:, order[:-1]] = values[
        rng.integers(0, hilbert.local_size, (batch, n - 1))]
    out = jax.jit(model.conditionals_log_psi)(
        params, np.concatenate([x[None], changed]).reshape(-1, n))
    out = np.asarray(out).reshape(n + 2, batch, n, -1)
    reference = out[0]
    for j in range(n):
      # The conditionals of steps up to and including j see only the sites
      # of earlier steps.
      seen = order[:j + 1]
      np.testing.assert_allclose(out[1 + j][:, seen], reference[:, seen],
                                 rtol=0, atol=1e-13, err_msg=f"step {j}")
    last = order[-1]
    self.assertGreater(
        np.abs(out[1 + n][:, last] - reference[:, last]).max(), 1e-6)

  @helpers.grid(FAST_MODEL_CASES, slow=OFF_SPIN_HALF)
  def test_fast_equals_slow(self, family, fast, space, dtype, machine_pow):
    slow = helpers.build(family, False, space, dtype, machine_pow)
    fast_model = helpers.build(family, True, space, dtype, machine_pow)
    params, _ = slow.init(jax.random.key(4))
    fast_params, _ = fast_model.init(jax.random.key(4))
    chex.assert_trees_all_equal_shapes_and_dtypes(params, fast_params)
    chex.assert_trees_all_equal(params, fast_params)
    x = random_states(slow.hilbert, jax.random.key(5), 16)
    full = jax.jit(slow.conditionals)(params, x)
    np.testing.assert_allclose(cached_conditionals(fast_model, params, x), full,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(cached_conditionals(slow, params, x), full,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(jax.jit(fast_model.log_psi)(params, x),
                               jax.jit(slow.log_psi)(params, x), rtol=0, atol=1e-10)


# Receptive fields wider than the lattice, dilation schedules, odd shapes,
# and the other families' own corners.
_ARCHITECTURES = [
    dict(testcase_name="conv1d_wavenet", family="conv1d", hilbert=zoo.spin_half(11),
         fields=dict(layers=4, features=3, kernel_size=2, kernel_dilation=(1, 2, 4, 8))),
    dict(testcase_name="conv1d_kernel_longer_than_chain", family="conv1d",
         hilbert=zoo.spin_one(4), fields=dict(layers=2, features=(5, 3), kernel_size=7)),
    dict(testcase_name="conv2d_wide_3x4", family="conv2d", hilbert=zoo.spin_half((3, 4)),
         fields=dict(layers=3, features=(4, 6, 2), kernel_size=(3, 5))),
    dict(testcase_name="conv2d_dilated_4x3", family="conv2d", hilbert=zoo.fock(2, (4, 3)),
         fields=dict(layers=3, features=3, kernel_size=(2, 3),
                     kernel_dilation=((1, 1), (2, 2), (3, 1)))),
    dict(testcase_name="conv2d_single_row", family="conv2d", hilbert=zoo.spin_half((1, 7)),
         fields=dict(layers=2, features=3, kernel_size=3)),
    dict(testcase_name="dense_no_bias", family="dense", hilbert=zoo.spin_half(7),
         fields=dict(layers=2, features=5, use_bias=False)),
    dict(testcase_name="conv1d_one_layer", family="conv1d", hilbert=zoo.spin_half(5),
         fields=dict(layers=1, features=2, kernel_size=2)),
    # Recurrent: chains open and periodic, a periodic 4 x 3 lattice (snake
    # order; the last row reads row 0 across the boundary), one row.
    dict(testcase_name="gru_chain_open", family="gru", hilbert=zoo.spin_half(7),
         fields=dict(layers=2, features=3, pbc=False)),
    dict(testcase_name="gru_chain_periodic_spin_one", family="gru",
         hilbert=zoo.spin_one(5), fields=dict(layers=1, features=4, pbc=True)),
    dict(testcase_name="gru_4x3_periodic", family="gru", hilbert=zoo.fock(2, (4, 3)),
         fields=dict(layers=3, features=(3, 4, 2), pbc=True)),
    dict(testcase_name="gru_single_row", family="gru", hilbert=zoo.spin_half((1, 5)),
         fields=dict(layers=2, features=3, pbc=True)),
    # Attention: three heads on a 2D lattice, one layer on a chain.
    dict(testcase_name="transformer_3x3_three_heads", family="transformer",
         hilbert=zoo.spin_half((3, 3)), fields=dict(layers=2, features=6, heads=3)),
    dict(testcase_name="transformer_one_layer", family="transformer",
         hilbert=zoo.spin_one(5), fields=dict(layers=1, features=4, heads=1)),
    # NetKet's exclusive first layer (k - 1 taps at multiples of the
    # dilation): plain, dilated, wider than the chain.
    dict(testcase_name="conv1d_netket_taps", family="conv1d",
         hilbert=zoo.spin_half(7),
         fields=dict(layers=3, features=3, kernel_size=3,
                     first_taps="netket")),
    dict(testcase_name="conv1d_netket_taps_dilated", family="conv1d",
         hilbert=zoo.spin_one(8),
         fields=dict(layers=3, features=3, kernel_size=2,
                     kernel_dilation=(3, 1, 2), first_taps="netket")),
    dict(testcase_name="conv1d_netket_taps_wide", family="conv1d",
         hilbert=zoo.spin_half(4),
         fields=dict(layers=2, features=2, kernel_size=5, kernel_dilation=2,
                     first_taps="netket")),
    # Deep gated stacks.
    dict(testcase_name="gated_conv1d_deep", family="gated_conv1d",
         hilbert=zoo.spin_half(9),
         fields=dict(layers=12, features=3, kernel_size=2,
                     kernel_dilation=(1, 2, 4) * 4)),
    dict(testcase_name="gated_conv2d_deep_dilated", family="gated_conv2d",
         hilbert=zoo.spin_half((4, 3)),
         fields=dict(layers=10, features=3, kernel_size=(2, 3),
                     kernel_dilation="wavenet")),
]


# One dtype per architecture, alternating down the list (the property grid
# meets both for every family).
ARCHITECTURES = [dict(case, dtype=(jnp.float64, jnp.complex128)[i % 2])
                 for i, case in enumerate(_ARCHITECTURES)]


@pytest.mark.slow  # corners beyond the property grid's fast == slow
class FastEqualsSlowArchitecturesTest(parameterized.TestCase):
  """Receptive fields wider than the lattice, dilation schedules, odd shapes."""

  @parameterized.named_parameters(ARCHITECTURES)
  def test_fast_equals_slow(self, family, hilbert, fields, dtype):
    slow = helpers.SLOW_FAST[family][0](hilbert, param_dtype=dtype, **fields)
    fast = helpers.SLOW_FAST[family][1](hilbert, param_dtype=dtype, **fields)
    params, _ = slow.init(jax.random.key(6))
    x = random_states(hilbert, jax.random.key(7), 8)
    np.testing.assert_allclose(cached_conditionals(fast, params, x),
                               jax.jit(slow.conditionals)(params, x), rtol=0, atol=1e-10)

  @pytest.mark.slow
  def test_float32_stays_float32(self):
    for family in helpers.SLOW_FAST:
      model = helpers.build(family, True, "spin_half", jnp.float32)
      params, _ = jax.jit(model.init)(jax.random.key(0))  # dtypes only
      for leaf in jax.tree.leaves(params):
        self.assertEqual(leaf.dtype, jnp.float32)
      x = random_states(model.hilbert, jax.random.key(1), 4).astype(jnp.float32)
      self.assertEqual(jax.jit(model.log_psi)(params, x).dtype, jnp.float32)
      cached = cached_conditionals(model, params, x)
      self.assertEqual(cached.dtype, jnp.float32)
      np.testing.assert_allclose(cached, jax.jit(model.conditionals)(params, x), atol=1e-5)


# Constrained spaces (Hilbert.total), one per family and local size.
SECTORS = {
    "dense": zoo.spin_half(6, total_sz=0),
    "conv1d": zoo.spin_one(5, total_sz=1),
    "conv2d": zoo.fock(3, (2, 3), n_particles=5),
    "gru": zoo.spin_half((2, 4), total_sz=0),  # in snake order
    "transformer": zoo.spin_one(4, total_sz=-1),
    "gated_conv1d": zoo.fock(2, 5, n_particles=4),
    "gated_conv2d": zoo.spin_half((2, 3), total_sz=1),
}
# One dtype and power per family, alternating (both meet the masking).
SECTOR_CASES = [
    dict(testcase_name=f"{family}_{jnp.dtype(dtype).name}_p{pow_}",
         family=family, dtype=dtype, machine_pow=pow_)
    for i, family in enumerate(SECTORS)
    for dtype, pow_ in (((jnp.float64, 2), (jnp.complex128, 1))[i % 2],)
]
COMPLEX = lambda case: case["dtype"] == jnp.complex128


class SectorTest(parameterized.TestCase):
  """Models on a space of fixed total: the sector holds all the weight."""

  @helpers.grid(SECTOR_CASES, slow=COMPLEX)
  def test_normalized_over_the_sector(self, family, dtype, machine_pow):
    hilbert = SECTORS[family]
    slow = helpers.build(family, False, hilbert, dtype, machine_pow)
    fast = helpers.build(family, True, hilbert, dtype, machine_pow)
    params, _ = slow.init(jax.random.key(8))
    x = hilbert.all_states()
    log_psi = jax.jit(slow.log_psi)(params, x)
    np.testing.assert_allclose(
        jnp.sum(jnp.exp(machine_pow * log_psi.real)), 1.0, rtol=1e-12)
    self.assertGreater(float(jnp.std(log_psi.real)), 1e-3)
    # Outside the sector psi = 0.
    whole = zoo.Hilbert(hilbert.local_states, hilbert.shape).all_states()
    outside = whole[~hilbert.contains(whole)][:64]
    self.assertTrue(np.all(np.isneginf(jax.jit(slow.log_psi)(params, outside).real)))
    # There every conditional is still a probability row, the same in the
    # cached pass.
    outside_probs = jax.jit(slow.conditionals)(params, outside)
    np.testing.assert_allclose(outside_probs.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(cached_conditionals(fast, params, outside),
                               outside_probs, rtol=0, atol=1e-10)
    # Fast == slow over the sector, conditionals and log psi.
    full = jax.jit(slow.conditionals)(params, x)
    np.testing.assert_allclose(cached_conditionals(fast, params, x), full,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(jax.jit(fast.log_psi)(params, x), log_psi,
                               rtol=0, atol=1e-10)
    # Forbidden states have probability exactly zero, and the gradient of
    # log psi stays finite.
    self.assertTrue(np.any(np.asarray(full) == 0))
    grad = jax.jit(jax.grad(lambda p: jnp.sum(slow.log_psi(p, x).real)))(params)
    for leaf in jax.tree.leaves(grad):
      self.assertTrue(np.all(np.isfinite(leaf)))

  def test_allowed_states_are_the_reachable_ones(self):
    from zoo.models import arnn
    hilbert = zoo.spin_half(4, total_sz=0)  # two up, two down
    # (sum before, site) -> allowed (down, up)
    cases = {(0.0, 0): (True, True), (2.0, 2): (True, False),
             (-2.0, 2): (False, True), (1.0, 3): (True, False),
             (-1.0, 3): (False, True), (0.0, 2): (True, True)}
    for (before, site), expected in cases.items():
      got = arnn.allowed_states(hilbert, jnp.asarray(before), jnp.asarray(site))
      np.testing.assert_array_equal(got, expected, err_msg=f"{before}, {site}")


@pytest.mark.slow
class SizeTransferTest(parameterized.TestCase):
  """Weight-shared families: parameters made at L run at L' > L."""

  @parameterized.named_parameters(
      ("gru_2d", "gru", (3, 3), (5, 4), dict(layers=2, features=4, pbc=True)),
      ("gru_chain", "gru", (5,), (9,), dict(layers=2, features=4, pbc=False)),
      ("transformer", "transformer", (2, 3), (4, 4),
       dict(layers=2, features=4, heads=2)),
      ("gated_conv1d", "gated_conv1d", (5,), (11,),
       dict(layers=3, features=4, kernel_size=2, kernel_dilation="wavenet")),
      ("gated_conv2d", "gated_conv2d", (3, 3), (4, 5),
       dict(layers=2, features=4, kernel_size=(2, 3))),
      ("conv2d", "conv2d", (3, 3), (4, 5),
       dict(layers=2, features=4, kernel_size=(2, 3))),
  )
  def test_parameters_run_on_a_larger_lattice(self, family, small, large,
                                              fields):
    slow, fast = helpers.SLOW_FAST[family]
    params, _ = fast(zoo.spin_half(small), **fields).init(jax.random.key(3))
    big = zoo.spin_half(large)
    chex.assert_trees_all_equal_shapes(
        params, slow(big, **fields).init(jax.random.key(0))[0])
    x = random_states(big, jax.random.key(4), 8)
    full = jax.jit(slow(big, **fields).conditionals)(params, x)
    np.testing.assert_allclose(full.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(cached_conditionals(fast(big, **fields), params, x),
                               full, rtol=0, atol=1e-10)


class KernelInitTest(absltest.TestCase):

  def test_masked_entries_zero_and_variance_restored(self):
    model = zoo.ARNNConv2D(zoo.spin_half((6, 6)), layers=2, features=256,
                           kernel_size=(3, 5))
    params, _ = model.init(jax.random.key(0))
    kernel = params["arnn_conv2d/~/layer_1"]["kernel"]  # [3, 5, 256, 2]
    self.assertTrue(bool(jnp.all(kernel[-1, 3:] == 0)))
    np.testing.assert_array_equal(params["arnn_conv2d/~/layer_1"]["bias"], 0)
    # LeCun variance 1 / fan_in with fan_in = 15 * 256, scaled by 15 / 13.
    open_entries = np.concatenate([np.ravel(kernel[:2]), np.ravel(kernel[2, :3])])
    np.testing.assert_allclose(np.var(open_entries), 1 / (13 * 256), rtol=0.1)


class SchedulesTest(parameterized.TestCase):
  """Python and configs take the same values: schedules resolve in the
  constructors."""

  @parameterized.named_parameters(
      ("int", 16, 3, "spin_half", (16, 16, 2)),
      ("hidden", (32, 8), 3, "spin_one", (32, 8, 3)),
      ("full", (32, 8, 2), 3, "spin_half", (32, 8, 2)),
      ("pyramid", ("pyramid", 32), 4, "spin_half", (32, 22, 12, 2)),
      ("log", ("log", 64), 4, "spin_half", (64, 20, 6, 2)),
      ("one_layer", ("pyramid", 32), 1, "fock3", (4,)),
      ("list", [8, 4], 3, "spin_half", (8, 4, 2)),
  )
  def test_features(self, features, layers, space, expected):
    model = zoo.FastARNNConv1D(helpers.HILBERTS_1D[space](), layers=layers,
                               features=features, kernel_size=3)
    self.assertEqual(model.spec.features, expected)

  def test_the_readme_example(self):
    model = zoo.FastARNNConv1D(zoo.spin_half(16), layers=3,
                               features=("log", 32), kernel_size=3)
    self.assertEqual(model.spec.features, (32, 8, 2))

  def test_wavenet_dilation(self):
    model = zoo.ARNNConv1D(zoo.spin_half(8), layers=3, features=4,
                           kernel_size=2, kernel_dilation="wavenet")
    self.assertEqual(model.spec.kernel_dilation, ((1,), (2,), (4,)))
    model = zoo.ARNNConv2D(zoo.spin_half((4, 4)), layers=2, features=4,
                           kernel_size=(2, 3), kernel_dilation="wavenet")
    self.assertEqual(model.spec.kernel_dilation, ((1, 1), (2, 2)))


class ValidationTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("features_wrong_end", zoo.ARNNDense, dict(layers=2, features=(4, 3)), "features=(4, 3)"),
      ("features_wrong_length", zoo.ARNNDense, dict(layers=3, features=(4,)),
       "features=(4,): has 1 entries; expected layers - 1 = 2 hidden widths"),
      ("features_zero", zoo.ARNNDense, dict(layers=2, features=0), "features=0: must be"),
      ("layers_zero", zoo.ARNNConv1D, dict(layers=0, features=4, kernel_size=3), "layers=0: must"),
      ("kernel_zero", zoo.ARNNConv1D, dict(layers=2, features=4, kernel_size=0), "kernel_size=0: must"),
      ("kernel_missing", zoo.FastARNNConv1D, dict(layers=2, features=4), "kernel_size=None: is required"),
      ("dilation_length", zoo.ARNNConv1D,
       dict(layers=2, features=4, kernel_size=2, kernel_dilation=(1, 2, 4)), "kernel_dilation=(1, 2, 4)"),
      ("dilation_negative", zoo.ARNNConv1D,
       dict(layers=2, features=4, kernel_size=2, kernel_dilation=-1), "kernel_dilation=-1: must"),
      ("dtype", zoo.ARNNDense, dict(layers=2, features=4, param_dtype=jnp.int32), "param_dtype"),
      ("machine_pow", zoo.ARNNDense, dict(layers=2, features=4, machine_pow=0), "machine_pow"),
      ("activation", zoo.ARNNDense, dict(layers=2, features=4, activation="gelu"), "activation='gelu'"),
      ("schedule_name", zoo.ARNNDense, dict(layers=3, features=("cone", 8)),
       "features[0]='cone': must be one of 'pyramid', 'log'"),
      ("schedule_width", zoo.ARNNDense, dict(layers=3, features=("log", 0)),
       "features[1]=0: must be a positive integer"),
      ("dilation_schedule", zoo.ARNNConv1D,
       dict(layers=2, features=4, kernel_size=2, kernel_dilation="doubling"),
       "kernel_dilation='doubling': must be one of 'wavenet'"),
      ("heads_divide", zoo.ARNNTransformer, dict(layers=2, features=6, heads=4),
       "heads=4: must divide the width of every layer, (6, 6)"),
      ("residual_width", zoo.ARNNGatedConv1D,
       dict(layers=2, features=(4, 8), kernel_size=2),
       "features=(4, 8): must be one width for all layers"),
      ("field_of_another_family", zoo.ARNNGRU,
       dict(layers=2, features=4, kernel_size=3),
       "kernel_size=3: does not apply to gru models; their fields: layers"),
      ("layers_required", zoo.FastARNNGRU, dict(features=4),
       "layers=None: is required for gru models"),
  )
  def test_bad_fields_name_field_and_value(self, constructor, fields, message):
    with self.assertRaisesRegex(ValueError, re.escape(message)):
      constructor(zoo.spin_half(6), **fields)

  def test_conv2d_needs_2d_lattice(self):
    with self.assertRaisesRegex(ValueError, r"hilbert=.*shape=\(6,\).*: must have a 2D lattice shape"):
      zoo.ARNNConv2D(zoo.spin_half(6), layers=2, features=4, kernel_size=3)
    with self.assertRaisesRegex(
        ValueError, r"hilbert=.*shape=\(6,\).*: must have a 2D lattice "
        r"shape \(Lx, Ly\) for gated_conv2d models"):
      zoo.ARNNGatedConv2D(zoo.spin_half(6), layers=2, features=4, kernel_size=3)

  def test_conv2d_even_kernel_width(self):
    with self.assertRaisesRegex(ValueError, r"kernel_size=\(2, 4\): must have an odd width"):
      zoo.FastARNNConv2D(zoo.spin_half((3, 3)), layers=2, features=4, kernel_size=(2, 4))

  def test_lattice_must_match_n(self):
    with self.assertRaisesRegex(ValueError, r"n_sites=10: does not match the lattice shape \(3, 3\)"):
      zoo.Hilbert((-1, 1), (3, 3), n_sites=10)

  def test_inputs_checked(self):
    model = zoo.FastARNNConv1D(zoo.spin_half(6), layers=2, features=4, kernel_size=3)
    params, _ = model.init(jax.random.key(0))
    with self.assertRaisesRegex(ValueError, r"shape \[B, 6\] or \[6\].*got shape \(2, 5\)"):
      model.log_psi(params, jnp.ones((2, 5)))
    with self.assertRaisesRegex(ValueError, r"got shape \(1, 2, 6\)"):
      model.conditionals(params, jnp.ones((1, 2, 6)))
    with self.assertRaisesRegex(ValueError, r"index=6: must be in \[0, 6\)"):
      model.conditional(params, model.init_cache(params, 1), jnp.ones((1, 6)), 6)
    with self.assertRaisesRegex(ValueError, r"batch_size=0: must be a positive integer"):
      model.init_cache(params, 0)
    # A single configuration works without the batch axis.
    chex.assert_shape(model.log_psi(params, jnp.ones(6)), ())
    chex.assert_shape(model.conditionals(params, jnp.ones(6)), (6, 2))


if __name__ == "__main__":
  absltest.main()

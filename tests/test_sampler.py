"""Exact sampling: distribution, support, log probabilities, determinism."""

from absl.testing import absltest, parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import zoo
from zoo import sampler
from tests import helpers


SAMPLER_CASES = [
    dict(testcase_name="conv1d_spin_half_N4", family="conv1d",
         hilbert=zoo.spin_half(4), dtype=jnp.float64, machine_pow=2),
    dict(testcase_name="conv1d_spin_half_N8_complex", family="conv1d",
         hilbert=zoo.spin_half(8), dtype=jnp.complex128, machine_pow=2),
    dict(testcase_name="dense_fock3_N4_p1", family="dense",
         hilbert=zoo.fock(3, 4), dtype=jnp.float64, machine_pow=1),
    dict(testcase_name="dense_spin_one_N5_complex", family="dense",
         hilbert=zoo.spin_one(5), dtype=jnp.complex128, machine_pow=2),
    dict(testcase_name="conv2d_spin_half_2x3", family="conv2d",
         hilbert=zoo.spin_half((2, 3)), dtype=jnp.float64, machine_pow=2),
    # Spaces of fixed total: the draws never leave the sector.
    dict(testcase_name="dense_spin_half_N8_sz0", family="dense",
         hilbert=zoo.spin_half(8, total_sz=0), dtype=jnp.float64, machine_pow=2),
    dict(testcase_name="conv2d_spin_half_2x4_sz1_complex", family="conv2d",
         hilbert=zoo.spin_half((2, 4), total_sz=1), dtype=jnp.complex128,
         machine_pow=2),
    dict(testcase_name="conv1d_fock2_N5_n4_p1", family="conv1d",
         hilbert=zoo.fock(2, 5, n_particles=4), dtype=jnp.float64, machine_pow=1),
    dict(testcase_name="conv2d_spin_one_3x2_complex_p1", family="conv2d",
         hilbert=zoo.spin_one((3, 2)), dtype=jnp.complex128, machine_pow=1),
    # Snake order: the draws are written back to the sites of the steps.
    dict(testcase_name="gru_spin_half_2x4_sz0", family="gru",
         hilbert=zoo.spin_half((2, 4), total_sz=0), dtype=jnp.float64,
         machine_pow=2),
    dict(testcase_name="gru_spin_one_3x2_complex", family="gru",
         hilbert=zoo.spin_one((3, 2)), dtype=jnp.complex128, machine_pow=2),
    dict(testcase_name="transformer_spin_half_N6", family="transformer",
         hilbert=zoo.spin_half(6), dtype=jnp.float64, machine_pow=2),
    dict(testcase_name="gated_conv2d_fock2_2x3_p1", family="gated_conv2d",
         hilbert=zoo.fock(2, (2, 3)), dtype=jnp.float64, machine_pow=1),
    dict(testcase_name="gated_conv1d_spin_half_N7_complex",
         family="gated_conv1d", hilbert=zoo.spin_half(7),
         dtype=jnp.complex128, machine_pow=2),
]
# The day-to-day tier (tests/conftest.py) samples two cases that meet a
# sector, complex parameters, the masked and the recurrent families; the
# slow tier (marked) the rest of the grid.
DAY_TO_DAY_DISTRIBUTIONS = ("conv2d_spin_half_2x4_sz1_complex",
                            "gru_spin_half_2x4_sz0")
NOT_DAY_TO_DAY = lambda case: (case["testcase_name"]
                                not in DAY_TO_DAY_DISTRIBUTIONS)


def state_index(hilbert, x):
  """The row of each configuration in Hilbert.all_states (which lists the
  configurations of the space in lexicographic order)."""
  powers = hilbert.local_size ** np.arange(hilbert.size - 1, -1, -1)
  lexicographic = np.asarray(hilbert.states_to_indices(x)) @ powers
  listed = np.asarray(hilbert.states_to_indices(hilbert.all_states())) @ powers
  return np.searchsorted(listed, lexicographic)


class SamplerTest(parameterized.TestCase):

  @helpers.grid(SAMPLER_CASES, slow=NOT_DAY_TO_DAY)
  def test_distribution_matches_exact(self, family, hilbert, dtype,
                                       machine_pow):
    slow, fast = (helpers.SLOW_FAST[family][i](
        hilbert, param_dtype=dtype, machine_pow=machine_pow,
        **helpers.FAMILY_FIELDS[family]) for i in (0, 1))
    params, _ = fast.init(jax.random.key(11))
    exact = np.exp(machine_pow * np.asarray(
        jax.jit(fast.log_psi)(params, hilbert.all_states()).real))
    np.testing.assert_allclose(exact.sum(), 1, rtol=1e-12)

    n = 20_000
    p_values = []
    for repeat in range(3):
      key = jax.random.key(100 + repeat)
      x, log_prob = sampler.sample(fast, params, key, n, return_log_prob=True)
      chex.assert_shape(x, (n, hilbert.size))
      chex.assert_shape(log_prob, (n,))
      self.assertTrue(hilbert.contains(x).all())
      counts = np.bincount(state_index(hilbert, x), minlength=hilbert.n_states)
      p_values.append(helpers.chi_squared_p_value(counts, exact))
    # Fisher's method combines the repeats into one p-value.
    combined = stats.combine_pvalues(p_values).pvalue
    self.assertGreater(combined, 0.01, msg=f"p-values {p_values}")

    # log_prob is machine_pow * Re log psi of the drawn samples.
    np.testing.assert_allclose(
        log_prob, machine_pow * jax.jit(fast.log_psi)(params, x).real,
        rtol=0, atol=1e-10)
    # The slow twin draws the very same samples from the same key.
    x_slow = sampler.sample(slow, params, key, 512)
    np.testing.assert_array_equal(x_slow, x[:512])

  def test_deterministic_and_chunk_independent(self):
    model = zoo.FastARNNConv1D(zoo.spin_one(7), layers=2, features=3, kernel_size=2)
    params, _ = model.init(jax.random.key(0))
    key = jax.random.key(5)
    whole = sampler.sample(model, params, key, 1000)
    np.testing.assert_array_equal(sampler.sample(model, params, key, 1000), whole)
    chunked = sampler.sample(model, params, key, 1000, chunk_size=300)
    np.testing.assert_array_equal(chunked, whole)
    # A prefix of a larger draw is the smaller draw.
    np.testing.assert_array_equal(sampler.sample(model, params, key, 200), whole[:200])
    other = sampler.sample(model, params, jax.random.key(6), 1000)
    self.assertFalse(np.array_equal(other, whole))

  def test_default_chunks_fit_the_cache_budget(self):
    fast = zoo.FastARNNConv2D(zoo.spin_half((6, 6)), layers=2, features=8,
                              kernel_size=(3, 3))
    slow = zoo.ARNNConv2D(zoo.spin_half((6, 6)), layers=2, features=8,
                          kernel_size=(3, 3))
    per_sample = sampler.cache_bytes_per_sample(fast)
    params, _ = fast.init(jax.random.key(0))
    cache = fast.init_cache(params, 3)
    self.assertEqual(3 * per_sample, sum(a.nbytes for a in jax.tree.leaves(cache)))
    self.assertEqual(sampler.cache_bytes_per_sample(slow), 0)
    big = 10 * sampler.CACHE_BYTES_PER_CHUNK // per_sample
    chunk = sampler.chunk_for(big, None, model=fast)
    self.assertLessEqual(chunk * per_sample, sampler.CACHE_BYTES_PER_CHUNK)
    self.assertGreater(2 * chunk * per_sample, sampler.CACHE_BYTES_PER_CHUNK)
    self.assertEqual(chunk & (chunk - 1), 0)  # a power of two
    self.assertEqual(sampler.chunk_for(big, None, model=slow), big)
    self.assertEqual(sampler.chunk_for(big, 7, model=fast), 7)
    self.assertEqual(sampler.chunk_for(5, None, model=fast), 5)
    # The default chunks change nothing: same samples as one chunk.
    key = jax.random.key(2)
    n = chunk + 3
    np.testing.assert_array_equal(sampler.sample(fast, params, key, n),
                                  sampler.sample(fast, params, key, n, chunk_size=n))

  def test_forbidden_states_are_never_drawn(self):
    # u = 0 and u just below 1 put u * total on the bounds of the cdf, where
    # round-off could pick a state of probability zero.
    for dtype in (jnp.float32, jnp.float64):
      hilbert = zoo.spin_half(6, total_sz=0)
      model = zoo.FastARNNDense(hilbert, layers=2, features=3, param_dtype=dtype)
      params, _ = model.init(jax.random.key(0))
      below_one = 1 - jnp.finfo(dtype).eps / 2
      uniforms = jnp.stack([jnp.zeros(6, dtype), jnp.full(6, below_one, dtype)])
      x, log_prob = jax.jit(lambda p, u: sampler.sample_with_uniforms(
          model, p, u))(params, uniforms)
      self.assertTrue(hilbert.contains(x).all(), msg=f"{dtype}: {x}")
      self.assertTrue(np.all(np.isfinite(log_prob)))
      # u = 0 takes the first allowed state at each site: -1 until the
      # downs run out.
      np.testing.assert_array_equal(x[0], [-1, -1, -1, 1, 1, 1])
      np.testing.assert_array_equal(x[1], [1, 1, 1, -1, -1, -1])

  def test_float32_samples(self):
    model = zoo.FastARNNConv2D(zoo.spin_half((3, 3)), layers=2, features=4,
                               kernel_size=(2, 3), param_dtype=jnp.float32)
    params, _ = model.init(jax.random.key(0))
    x, log_prob = sampler.sample(model, params, jax.random.key(1), 64,
                                 return_log_prob=True)
    self.assertEqual(x.dtype, jnp.float32)
    self.assertEqual(log_prob.dtype, jnp.float32)

  def test_bad_arguments(self):
    model = zoo.FastARNNDense(zoo.spin_half(4), layers=2, features=3)
    params, _ = model.init(jax.random.key(0))
    with self.assertRaisesRegex(ValueError, "n_samples=0: must be a positive integer"):
      sampler.sample(model, params, jax.random.key(0), 0)
    with self.assertRaisesRegex(ValueError, "chunk_size=-2: must be a positive integer"):
      sampler.sample(model, params, jax.random.key(0), 10, chunk_size=-2)
    with self.assertRaisesRegex(ValueError, r"model=.*: must be a zoo model \(zoo.models.Model\)"):
      sampler.sample(object(), params, jax.random.key(0), 10)


if __name__ == "__main__":
  absltest.main()

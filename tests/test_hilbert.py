"""Hilbert spaces: sizes, index conversions, enumeration, errors."""

from absl.testing import absltest, parameterized
import jax.numpy as jnp
import numpy as np

import zoo


class HilbertTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("spin_half", zoo.spin_half(5), (-1, 1)),
      ("spin_one_2d", zoo.spin_one((2, 3)), (-1, 0, 1)),
      ("fock", zoo.fock(3, 4), (0, 1, 2, 3)),
      ("custom", zoo.Hilbert((-1.5, -0.5, 0.5, 1.5), 3), (-1.5, -0.5, 0.5, 1.5)),
  )
  def test_round_trip_and_enumeration(self, hilbert, values):
    self.assertEqual(hilbert.local_states, tuple(float(v) for v in values))
    self.assertEqual(hilbert.local_size, len(values))
    self.assertEqual(hilbert.n_states, len(values) ** hilbert.size)
    states = hilbert.all_states()
    self.assertEqual(states.shape, (hilbert.n_states, hilbert.size))
    self.assertLen(np.unique(np.asarray(states), axis=0), hilbert.n_states)
    self.assertTrue(hilbert.contains(states).all())
    idx = hilbert.states_to_indices(states)
    np.testing.assert_array_equal(hilbert.indices_to_states(idx), states)
    # Lexicographic order: the last site varies fastest.
    np.testing.assert_array_equal(idx[1, -1], 1)

  def test_sizes(self):
    h = zoo.spin_half((3, 5))
    self.assertEqual((h.size, h.shape), (15, (3, 5)))
    self.assertEqual(zoo.spin_half(7).shape, (7,))

  def test_contains_rejects_other_values(self):
    h = zoo.spin_half(3)
    np.testing.assert_array_equal(h.contains(np.array([[1, -1, 1], [1, 0, 1]])), [True, False])

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, "strictly increasing, got \\(1.0, -1.0\\)"):
      zoo.Hilbert((1, -1), 3)
    with self.assertRaisesRegex(ValueError, "at least 2 values"):
      zoo.Hilbert((1,), 3)
    with self.assertRaisesRegex(ValueError, "shape must be \\(N,\\) or \\(Lx, Ly\\).*\\(2, 2, 2\\)"):
      zoo.spin_half((2, 2, 2))
    with self.assertRaisesRegex(ValueError, "got \\(0,\\)"):
      zoo.spin_half(0)
    with self.assertRaisesRegex(ValueError, "n_max must be a positive integer, got 0"):
      zoo.fock(0, 3)
    with self.assertRaisesRegex(ValueError, "would enumerate 2\\*\\*40"):
      zoo.spin_half(40).all_states()


if __name__ == "__main__":
  absltest.main()

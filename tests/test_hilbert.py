"""Hilbert spaces: sizes, index conversions, enumeration, errors."""

import math

from absl.testing import absltest, parameterized
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
    with self.assertRaisesRegex(ValueError, "local_states=\\(1.0, -1.0\\): must be strictly increasing"):
      zoo.Hilbert((1, -1), 3)
    with self.assertRaisesRegex(ValueError, "local_states=\\(1,\\): must be at least 2 numbers"):
      zoo.Hilbert((1,), 3)
    with self.assertRaisesRegex(ValueError, "shape=\\(2, 2, 2\\): must be \\(N,\\) or \\(Lx, Ly\\)"):
      zoo.spin_half((2, 2, 2))
    with self.assertRaisesRegex(ValueError, "shape=\\(0,\\): must be"):
      zoo.spin_half(0)
    with self.assertRaisesRegex(ValueError, "n_max=0: must be a positive integer"):
      zoo.fock(0, 3)
    with self.assertRaisesRegex(ValueError, "would enumerate 2\\*\\*40"):
      zoo.spin_half(40).all_states()


class ConstrainedHilbertTest(parameterized.TestCase):

  @parameterized.named_parameters(
      # (space, the total of its values, the count of its configurations)
      ("sz0_chain", zoo.spin_half(8, total_sz=0), 0.0, math.comb(8, 4)),
      ("sz1_square", zoo.spin_half((2, 3), total_sz=1), 2.0, math.comb(6, 4)),
      ("spin_one", zoo.spin_one(4, total_sz=-1), -1.0, 16),
      ("fock", zoo.fock(2, 4, n_particles=3), 3.0, 16),
      ("custom", zoo.Hilbert((-1.5, -0.5, 0.5, 1.5), 3, total=0.5), 0.5, 12),
  )
  def test_holds_exactly_the_configurations_with_the_total(
      self, hilbert, total, count):
    self.assertEqual(hilbert.total, total)
    self.assertEqual(hilbert.n_states, count)
    states = np.asarray(hilbert.all_states())
    self.assertEqual(states.shape, (count, hilbert.size))
    np.testing.assert_allclose(states.sum(-1), total)
    # The same configurations as filtering the whole space by their sum.
    whole = np.asarray(zoo.Hilbert(hilbert.local_states, hilbert.shape)
                       .all_states())
    np.testing.assert_array_equal(
        states, whole[np.abs(whole.sum(-1) - total) < 1e-9])
    self.assertTrue(hilbert.contains(states).all())
    self.assertFalse(hilbert.contains(whole[np.abs(whole.sum(-1) - total) > 1e-9]).any())

  def test_is_another_space(self):
    self.assertNotEqual(zoo.spin_half(4, total_sz=0), zoo.spin_half(4))
    self.assertEqual(zoo.spin_half(4, total_sz=0), zoo.spin_half(4, total_sz=0))
    self.assertLen({zoo.spin_half(4, total_sz=0), zoo.spin_half(4)}, 2)
    self.assertIn("total=0.0", repr(zoo.spin_half(4, total_sz=0)))
    self.assertIsNone(zoo.spin_half(4).total)

  def test_bad_totals(self):
    with self.assertRaisesRegex(
        ValueError, r"total_sz=0: is not the total S\^z of any configuration of 5 sites "
        r"\(-2.5 to 2.5 in steps of 1\)"):
      zoo.spin_half(5, total_sz=0)
    with self.assertRaisesRegex(ValueError, "total=7: is not a sum of 3"):
      zoo.fock(2, 3, n_particles=7)
    with self.assertRaisesRegex(ValueError, "total=2: needs equally spaced local states"):
      zoo.Hilbert((0, 1, 3), 4, total=2)
    with self.assertRaisesRegex(ValueError, "total='a': must be a number or None"):
      zoo.Hilbert((0, 1), 4, total="a")
    with self.assertRaisesRegex(ValueError, "total_sz=True: must be a number or None"):
      zoo.spin_half(4, total_sz=True)
    with self.assertRaisesRegex(ValueError, "n_particles=-1: must be an integer >= 0"):
      zoo.fock(2, 3, n_particles=-1)


if __name__ == "__main__":
  absltest.main()

"""Chunks of a batch (zoo.chunks): as even as their number allows, the
padding cut, the same results as one pass."""

from absl.testing import absltest, parameterized
import jax.numpy as jnp
import numpy as np

from zoo import chunks


class ChunksTest(parameterized.TestCase):

  @parameterized.parameters((256, 112, 3, 86), (10, 4, 3, 4), (7, 7, 1, 7),
                            (9, 1, 9, 1), (100, 33, 4, 25))
  def test_split_is_as_even_as_the_count_allows(self, batch, at_most, count,
                                                size):
    a = jnp.arange(batch * 2).reshape(batch, 2)
    split = chunks.split_chunks(a, at_most, "first")
    self.assertEqual(split.shape, (count, size, 2))
    flat = split.reshape(-1, 2)
    np.testing.assert_array_equal(flat[:batch], a)
    np.testing.assert_array_equal(flat[batch:],
                                  jnp.broadcast_to(a[0], flat[batch:].shape))
    np.testing.assert_array_equal(
        chunks.split_chunks(a, at_most, 0).reshape(-1, 2)[batch:], 0)

  @parameterized.parameters(1, 3, 5, 64)
  def test_map_equals_one_pass(self, at_most):
    x = jnp.arange(20.0).reshape(10, 2)
    np.testing.assert_array_equal(  # samples on axis 0, and on axis 1
        chunks.map_chunks(lambda c: c.sum(axis=1), x, at_most), x.sum(axis=1))
    np.testing.assert_array_equal(
        chunks.map_chunks(lambda c: c.T, x, at_most, axis=1), x.T)


if __name__ == "__main__":
  absltest.main()

"""Masked layers on their own: receptive fields and cached == full pass."""

from unittest import mock

from absl.testing import absltest, parameterized
import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

import zoo  # noqa: F401  (enables float64)
from zoo import nn
from zoo import sampler as zoo_sampler
from zoo.nn import recurrent

B, FIN, FOUT = 3, 2, 4

LAYERS = dict(
    dense=lambda exclusive: nn.MaskedDense1D(7, FOUT, exclusive=exclusive),
    conv1d=lambda exclusive: nn.MaskedConv1D(FOUT, 3, kernel_dilation=2, exclusive=exclusive),
    conv2d=lambda exclusive: nn.MaskedConv2D((3, 4), FOUT, (3, 3), kernel_dilation=(1, 2),
                                             exclusive=exclusive),
)


def layer_functions(kind, exclusive):
  """(init, full pass [B, N, Fin] -> [B, N, Fout], cached pass) for a layer."""

  def functions():
    layer = LAYERS[kind](exclusive)
    shape = (3, 4) if kind == "conv2d" else (7,)

    def full(x):  # [B, N, Fin]
      y = layer(x.reshape(x.shape[0], *shape, FIN))
      return y.reshape(x.shape[0], -1, FOUT)

    def cached(x):  # [B, N, Fin], site by site through the cache
      layer.init_cache(x.shape[0], FIN)
      outputs = []
      for index in range(x.shape[1]):
        newest = index - 1 if exclusive else index
        # The cached pass is feature-major: [Fin, B] -> [Fout, B].
        y = layer.cached_step(x[:, max(newest, 0)].T, jnp.asarray(index))
        outputs.append(y.T)
      return jnp.stack(outputs, axis=1)

    return full, (full, cached)

  return hk.multi_transform_with_state(functions)


class MaskedLayerTest(parameterized.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(kind=("dense", "conv1d", "conv2d"), exclusive=(True, False))
  def test_cached_equals_full(self, kind, exclusive):
    t = layer_functions(kind, exclusive)
    x = jax.random.normal(jax.random.key(0), (B, 7 if kind != "conv2d" else 12, FIN))
    params, state = t.init(jax.random.key(1), x)
    full = self.variant(lambda p, x: t.apply[0](p, state, None, x)[0])(params, x)
    cached = self.variant(lambda p, x: t.apply[1](p, state, None, x)[0])(params, x)
    chex.assert_shape(full, (B, x.shape[1], FOUT))
    chex.assert_trees_all_close(cached, full, atol=1e-12, rtol=0)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(kind=("dense", "conv1d", "conv2d"), exclusive=(True, False))
  def test_receptive_field_is_causal(self, kind, exclusive):
    t = layer_functions(kind, exclusive)
    n = 12 if kind == "conv2d" else 7
    x = jax.random.normal(jax.random.key(0), (1, n, FIN))
    params, state = t.init(jax.random.key(1), x)
    full = lambda x: t.apply[0](params, state, None, x)[0]
    # jacobian[i, j] = |d out_i / d in_j| summed over features.
    jac = self.variant(jax.jacobian(full))(x)[0, :, :, 0, :, :]  # [N, Fout, N, Fin]
    seen = np.asarray(jnp.abs(jac).sum(axis=(1, 3)) > 0)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    allowed = (j < i) if exclusive else (j <= i)
    self.assertFalse(np.any(seen & ~allowed), msg=f"future sites seen:\n{seen.astype(int)}")
    # Nothing is cut off entirely: an inclusive layer sees its own site, an
    # exclusive one sees something at the last site.
    if exclusive:
      self.assertTrue(seen[-1].any())
    else:
      self.assertTrue(np.all(np.diag(seen)))

  def test_conv2d_dilated_receptive_field(self):
    # Kernel (2, 3), dilation (2, 2) on a 5 x 5 lattice, output at (4, 2):
    # row 2 at columns 0, 2, 4 and row 4 at columns 0 (and 2 if inclusive).
    t = hk.transform(lambda x: nn.MaskedConv2D(
        (5, 5), 1, (2, 3), kernel_dilation=2, exclusive=False)(x))
    x = jnp.ones((1, 5, 5, 1))
    params = t.init(jax.random.key(0), x)
    jac = jax.jacobian(lambda x: t.apply(params, None, x)[0, 4, 2, 0])(x)[0, :, :, 0]
    expected = np.zeros((5, 5), bool)
    expected[2, [0, 2, 4]] = True
    expected[4, [0, 2]] = True
    np.testing.assert_array_equal(np.asarray(jac != 0), expected)

  def test_same_params_for_both_passes(self):
    t = layer_functions("conv2d", True)
    x = jnp.ones((B, 12, FIN))
    params, _ = t.init(jax.random.key(1), x)
    chex.assert_tree_shape_prefix(params, ())
    self.assertEqual(jax.tree.map(jnp.shape, params),
                     {"masked_conv2d": {"kernel": (3, 3, FIN, FOUT), "bias": (FOUT,)}})

  @parameterized.product(kind=("conv1d", "conv2d"), exclusive=(True, False),
                         features=((1, 5), (6, 2), (6, 6)))
  def test_full_pass_forms_equal_xla_convolution(self, kind, exclusive,
                                                 features):
    # (1, 5) spreads, (6, 2) pushes, (6, 6) is XLA's convolution: values,
    # forward and reverse derivatives in x and the kernel against XLA's
    # convolution alone; and the valid pass is the full pass after `back`.
    fin, fout = features
    shape = (4, 5) if kind == "conv2d" else (9,)

    def layer():
      if kind == "conv2d":
        return nn.MaskedConv2D(shape, fout, (3, 3), kernel_dilation=(1, 2),
                               exclusive=exclusive)
      return nn.MaskedConv1D(fout, 3, kernel_dilation=2, exclusive=exclusive)

    t = hk.transform(lambda x, valid=False: layer()(x, valid=valid))
    back = hk.transform(lambda: layer().back)
    x = jax.random.normal(jax.random.key(0), (B, *shape, fin))
    params = t.init(jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a nonzero bias
    apply = lambda p, x: t.apply(p, None, x)
    dp = jax.tree.map(lambda p: jnp.cos(p), params)
    dx = jnp.sin(x)
    cotangent = jax.random.normal(jax.random.key(2), (B, *shape, fout))
    results = []
    for forced in (False, True):
      with mock.patch.multiple(nn.masked, SPREAD_MAX_IN_FEATURES=(
          0 if forced else nn.masked.SPREAD_MAX_IN_FEATURES),
                               PUSH_MAX_OUT_FEATURES=(
          0 if forced else nn.masked.PUSH_MAX_OUT_FEATURES)):
        y, jvp = jax.jvp(apply, (params, x), (dp, dx))
        _, vjp = jax.vjp(apply, params, x)
        valid = t.apply(params, None, x, True)
        results.append((y, jvp, vjp(cotangent), valid))
    chex.assert_trees_all_close(results[0], results[1], atol=1e-12, rtol=0)
    y, valid = results[0][0], results[0][3]
    chex.assert_trees_all_close(valid, y[:, back.apply({}, None):],
                                atol=1e-12, rtol=0)

  def test_bad_layer_fields(self):
    with self.assertRaisesRegex(ValueError, "kernel_size must have an odd width, got \\(3, 2\\)"):
      hk.transform(lambda: nn.MaskedConv2D((3, 3), 2, (3, 2), exclusive=True)).init(None)
    with self.assertRaisesRegex(ValueError, "kernel_dilation=0: must be a positive integer"):
      hk.transform(lambda: nn.MaskedConv1D(2, 3, kernel_dilation=0, exclusive=True)).init(None)
    with self.assertRaisesRegex(ValueError, "features=-1: must be a positive integer"):
      hk.transform(lambda: nn.MaskedDense1D(4, -1, exclusive=True)).init(None)


class AttentionTest(chex.TestCase):
  """The KV-cached pass equals the full pass; position t sees positions <= t."""

  def _functions(self):
    def functions():
      layer = nn.CausalSelfAttention(6, 3)

      def cached(h):  # [B, T, F], position by position through the KV cache
        layer.init_cache(h.shape[0], h.shape[1])
        return jnp.stack([layer.cached_step(h[:, t].T, jnp.asarray(t)).T
                          for t in range(h.shape[1])], axis=1)

      return layer, (layer, cached)

    return hk.multi_transform_with_state(functions)

  @chex.variants(with_jit=True, without_jit=True)
  def test_cached_equals_full(self):
    t = self._functions()
    h = jax.random.normal(jax.random.key(0), (B, 5, 6))
    params, state = t.init(jax.random.key(1), h)
    full = self.variant(lambda p, h: t.apply[0](p, state, None, h)[0])(params, h)
    cached = self.variant(lambda p, h: t.apply[1](p, state, None, h)[0])(params, h)
    chex.assert_shape(full, (B, 5, 6))
    chex.assert_trees_all_close(cached, full, atol=1e-12, rtol=0)

  def test_causal(self):
    t = self._functions()
    h = jax.random.normal(jax.random.key(0), (1, 5, 6))
    params, state = t.init(jax.random.key(1), h)
    jac = jax.jacobian(lambda h: t.apply[0](params, state, None, h)[0])(h)
    seen = np.asarray(jnp.abs(jac[0, :, :, 0]).sum(axis=(1, 3)) > 0)  # [T, T]
    np.testing.assert_array_equal(seen, np.tril(np.ones((5, 5), bool)))


class NeighbourhoodTest(parameterized.TestCase):
  """The recurrent layers' generation order and neighbour tables."""

  @parameterized.parameters(
      ((7,), False), ((7,), True), ((4, 5), False), ((4, 5), True),
      ((3, 3), True), ((2, 2), True), ((1, 5), True), ((5, 1), True))
  def test_neighbours_are_earlier_lattice_neighbours_and_reach_everything(
      self, shape, pbc):
    nb = nn.neighbourhood(shape, pbc)
    n = int(np.prod(shape))
    order = nb.order
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    step_of = np.argsort(order)
    height, width = (1,) + shape if len(shape) == 1 else shape

    def lattice_neighbours(site):
      r, c = divmod(site, width)
      out = set()
      for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        rr, cc = r + dr, c + dc
        if pbc:
          rr, cc = rr % height, cc % width
        if 0 <= rr < height and 0 <= cc < width and (rr, cc) != (r, c):
          out.add(rr * width + cc)
      return out

    reach = [set() for _ in range(n)]  # sites each step depends on
    for t in range(n):
      site = order[t]
      read = set(nb.sites[t][nb.present[t]])
      earlier = {s for s in lattice_neighbours(site) if step_of[s] < t}
      self.assertEqual(read, earlier, f"step {t}, site {site}")
      for s in read:
        reach[t] |= reach[step_of[s]] | {s}
      # Snake order has no blind spot: every earlier site reaches this one.
      self.assertEqual(reach[t], set(order[:t]), f"step {t}")

  @parameterized.parameters(
      ((7,), False), ((7,), True), ((4, 5), False), ((4, 5), True),
      ((2, 2), True), ((1, 5), True), ((5, 1), True))
  def test_rare_directions_are_absent_off_their_steps(self, shape, pbc):
    """A step multiplies the rare directions' states only on rare_steps:
    everywhere else they must be absent (zeros)."""
    nb = nn.neighbourhood(shape, pbc)
    self.assertEqual(sorted(nb.common + nb.rare),
                     list(range(len(nb.directions))))
    rare = nb.present[:, list(nb.rare)]
    np.testing.assert_array_equal(rare.any(axis=1), nb.rare_steps)
    self.assertTrue(np.all(2 * rare.sum(axis=0) <= len(nb.order)))
    if pbc and len(shape) == 2 and min(shape) > 2:  # the wrap-arounds
      self.assertEqual([nb.directions[d] for d in nb.rare], ["next", "below"])
    if not pbc and min(shape) > 2:
      self.assertEqual(nb.rare, ())

  @parameterized.parameters(((6,), True), ((4, 5), True), ((5, 3), False))
  def test_buffers_hold_the_state_each_step_reads(self, shape, pbc):
    """Replays the ring and the first steps' buffer with step numbers."""
    nb = nn.neighbourhood(shape, pbc)
    buffer = np.full(nb.slots, -1)  # the step whose state each slot holds
    step_of = np.argsort(nb.order)
    for t in range(len(nb.order)):
      for d in range(len(nb.directions)):
        got = buffer[nb.read_slot[t, d]]
        if nb.present[t, d]:
          self.assertEqual(got, step_of[nb.sites[t, d]], (t, d))
          # A restart's history holds step s in row s.
          self.assertEqual(nb.read_step[t, d], got)
        else:  # an absent neighbour reads the slot nobody writes: zeros
          self.assertEqual(nb.read_slot[t, d], nb.zero_slot)
          self.assertEqual(nb.read_step[t, d], len(nb.order))  # the zero row
      buffer[t % nb.ring] = t
      buffer[nb.keep_slot[t]] = t
    self.assertEqual(buffer[nb.zero_slot], -1)


class LatticeGRUTest(parameterized.TestCase):
  """The recurrent layer's written-out reverse pass."""

  @parameterized.parameters(((3, 3), True, True), ((2, 3), False, False),
                            ((5,), True, True))
  def test_reverse_pass_equals_finite_differences(self, shape, pbc,
                                                  use_bias):
    nb = nn.neighbourhood(shape, pbc)
    steps, batch, inputs = len(nb.order), 2, 3

    def probed(shift, own):  # the full pass with a shift at its outputs
      layer = nn.LatticeGRU(nb, 2, use_bias=use_bias)
      return layer.probed(shift, own)[0]

    f = hk.transform(probed)
    keys = jax.random.split(jax.random.key(0), 4)
    own = jax.random.normal(keys[0], (steps, inputs, batch))
    shift = 0.3 * jax.random.normal(keys[1], (batch, steps, 6))
    params = f.init(keys[2], shift, own)
    params = jax.tree.map(  # away from the initial merge's identity
        lambda p: p + 0.2 * jax.random.normal(keys[3], p.shape), params)
    weights = jax.random.normal(keys[3], (steps, 2, batch))

    def loss(params, shift, own):
      return jnp.sum(weights * jnp.sin(f.apply(params, None, shift, own)))

    jax.test_util.check_grads(loss, (params, shift, own), order=1,
                              modes=["rev"], atol=1e-7, rtol=1e-7)

  @parameterized.parameters(((3, 3),), ((5,),))
  def test_rare_products_at_every_step_change_nothing(self, shape):
    """Off CONDITIONAL_BACKENDS the rare directions' product is taken at
    every step: the full pass, its reverse pass and the cached pass (a
    model's samples and their log probabilities) equal the conditional
    ones."""
    nb = nn.neighbourhood(shape, True)
    self.assertNotEqual(nb.rare, ())
    steps, batch, inputs = len(nb.order), 3, 2
    f = hk.transform(lambda own: nn.LatticeGRU(nb, 3)(own))
    keys = jax.random.split(jax.random.key(1), 3)
    own = jax.random.normal(keys[0], (steps, inputs, batch))
    params = f.init(keys[1], own)
    model = zoo.FastARNNGRU(zoo.spin_half(shape), layers=2, features=3)
    model_params, _ = model.init(keys[2])

    def run(chunk_size):
      # The flag is read when a pass is traced: the sampler is traced anew
      # for another chunk size (its samples do not depend on it).
      loss = lambda p, own: jnp.sum(jnp.sin(f.apply(p, None, own)))
      return (f.apply(params, None, own), jax.grad(loss, (0, 1))(params, own),
              zoo_sampler.sample(model, model_params, keys[0], 16,
                                 chunk_size=chunk_size, return_log_prob=True))

    conditional = run(None)
    with mock.patch.object(recurrent, "CONDITIONAL_BACKENDS", ()):
      every_step = run(8)
    chex.assert_trees_all_close(every_step, conditional, atol=1e-12,
                                rtol=1e-12)


class ActivationTest(absltest.TestCase):

  def test_selu_equals_jax_selu(self):
    for dtype, atol in ((jnp.float32, 2e-7), (jnp.float64, 5e-16)):
      x = jnp.concatenate([jnp.linspace(-30, 30, 2001, dtype=dtype),
                           jnp.array([-1e-12, 0.0, 1e-12, -jnp.inf, jnp.inf], dtype)])
      y = nn.activations.selu(x)
      self.assertEqual(y.dtype, dtype)
      np.testing.assert_allclose(y, jax.nn.selu(x), rtol=atol, atol=atol)
      grad = jax.vmap(jax.grad(nn.activations.selu))(x[:-2])
      np.testing.assert_allclose(grad, jax.vmap(jax.grad(jax.nn.selu))(x[:-2]),
                                 rtol=atol * 10, atol=atol * 10)
      self.assertTrue(np.all(np.isfinite(grad)))

  def test_selu_on_real_and_imaginary_parts(self):
    z = jnp.array([-1.0 + 2.0j, 0.5 - 0.3j])
    np.testing.assert_allclose(nn.reim_selu(z).real, jax.nn.selu(z.real))
    np.testing.assert_allclose(nn.reim_selu(z).imag, jax.nn.selu(z.imag))
    np.testing.assert_allclose(nn.reim_selu(z.real), jax.nn.selu(z.real))


if __name__ == "__main__":
  absltest.main()

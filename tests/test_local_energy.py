"""Local energies that restart connected configurations from the shared
prefix equal the full evaluation (zoo.vmc.local_energy)."""

from absl.testing import absltest, parameterized
import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo import sampler
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.vmc import local_energy
from tests import helpers

# Hamiltonians on chains and lattices, periodic and open; the conserving
# ones also in the S^z = 0 sector.
SYSTEMS = {
    "tfim_chain_open": (lambda: hamiltonians.TransverseFieldIsing(
        lattice_lib.chain(6, pbc=False), h=0.7), None),
    "heisenberg_chain_sz0": (lambda: hamiltonians.Heisenberg(
        lattice_lib.chain(6), marshall_sign=True), 0),
    "j1j2_2x3_open": (lambda: hamiltonians.J1J2(
        lattice_lib.square(2, 3, pbc=False), J2=0.4), None),
    "heisenberg_2x4_sz0": (lambda: hamiltonians.Heisenberg(
        lattice_lib.square(2, 4)), 0),
    "tfim_3x2": (lambda: hamiltonians.TransverseFieldIsing(
        lattice_lib.square(3, 2), h=1.3), None),
}
# Each family on systems that together meet every Hamiltonian, both
# boundaries and both spaces (the whole one and a sector); the recurrent
# family, which restarts by default, on all of its.
COVER = {
    "dense": ("tfim_chain_open", "heisenberg_2x4_sz0"),
    "conv1d": ("heisenberg_chain_sz0",),
    "conv2d": ("j1j2_2x3_open",),
    "gru": ("heisenberg_2x4_sz0", "j1j2_2x3_open", "tfim_3x2"),
    "transformer": ("heisenberg_chain_sz0",),
    "gated_conv1d": ("tfim_chain_open",),
    "gated_conv2d": ("tfim_3x2",),
}
CASES = [dict(testcase_name=f"{family}_{system}_{jnp.dtype(dtype).name}",
              family=family, system=system, dtype=dtype)
         for i, (family, system) in enumerate(
             (f, s) for f in helpers.SLOW_FAST for s in COVER[f])
         for dtype in ((jnp.float64, jnp.complex128)[i % 2],)]


def slow_case(name: str) -> bool:
  """The slow tier: all but the recurrent family (which restarts by
  default) and one convolution."""
  return not (name.startswith("test_restarts_equal_full_passes_gru")
              or name.startswith("test_restarts_equal_full_passes_conv2d"))


class LocalEnergyTest(parameterized.TestCase):

  @parameterized.named_parameters(CASES)
  def test_restarts_equal_full_passes(self, family, system, dtype):
    build, sector = SYSTEMS[system]
    ham = build()
    hilbert = zoo.spin_half(ham.lattice.shape, total_sz=sector)
    if family in ("conv1d", "gated_conv1d", "dense", "transformer"):
      hilbert = zoo.spin_half(ham.n_sites, total_sz=sector)
    fields = dict(helpers.FAMILY_FIELDS[family])
    if family == "gru":
      fields["pbc"] = ham.lattice.pbc
    model = helpers.SLOW_FAST[family][1](hilbert, param_dtype=dtype, **fields)
    params, _ = model.init(jax.random.key(0))
    x = sampler.sample(model, params, jax.random.key(1), 24)
    full = jax.jit(lambda p, x: ham.local_energy(model.log_psi, p, x))(
        params, x)
    # The restart algorithm itself, on every fast family, whole and in
    # chunks; the recurrent family also with one segment and one per step.
    for segments in (3,) + ((1, ham.n_sites) if family == "gru" else ()):
      restarted = jax.jit(lambda p, x, s=segments: local_energy._restarted(
          model, ham, p, x, s))(params, x)
      np.testing.assert_allclose(restarted, full, rtol=0, atol=1e-10,
                                 err_msg=f"{segments} segments")
    chunked = jax.jit(lambda p, x: local_energy.local_energies(
        model, ham, p, x, chunk_size=5))(params, x)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-10)
    self.assertEqual(local_energy.reuses_prefix(model), family == "gru")

  def test_first_changed_steps(self):
    ham = hamiltonians.Heisenberg(lattice_lib.square(2, 3))
    order = np.array([0, 1, 2, 5, 4, 3])  # snake order on 2 x 3
    first = local_energy.first_changed_steps(ham, order)
    sites = ham.connected_sites()
    self.assertEqual(first[0], 6)  # the diagonal never changes
    step_of = np.argsort(order)
    for m in range(1, len(first)):
      self.assertEqual(first[m], min(step_of[s] for s in sites[m] if s >= 0))


if __name__ == "__main__":
  absltest.main()

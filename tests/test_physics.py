"""Tests for zoo.physics: lattices, Hamiltonians, exact diagonalization."""

import itertools
import json
import os
import pathlib
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

jax.config.update("jax_enable_x64", True)

from zoo.physics import exact  # pylint: disable=g-import-not-at-top
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.physics import reference

LATTICES = {
    "chain8_pbc": lattice_lib.chain(8, pbc=True),
    "chain8_obc": lattice_lib.chain(8, pbc=False),
    "rect2x4_pbc": lattice_lib.square(2, 4, pbc=True),
    "rect2x4_obc": lattice_lib.square(2, 4, pbc=False),
}

HAMILTONIANS = {
    "tfim": lambda lat: hamiltonians.TransverseFieldIsing(lat, h=0.7, J=1.3),
    "heisenberg": lambda lat: hamiltonians.Heisenberg(lat, J=1.1),
    "heisenberg_marshall": lambda lat: hamiltonians.Heisenberg(
        lat, J=1.1, marshall_sign=True),
    "j1j2": lambda lat: hamiltonians.J1J2(lat, J2=0.4, J1=0.9),
    "j1j2_marshall": lambda lat: hamiltonians.J1J2(
        lat, J2=0.4, J1=0.9, marshall_sign=True),
}


def table_log_psi(params, x):  # [b, N] -> [b]
  """log psi as a lookup table over all states, in all_states() order."""
  n = x.shape[-1]
  bits = (x > 0).astype(jnp.int64)
  index = jnp.sum(bits * (2 ** jnp.arange(n - 1, -1, -1)), axis=-1)
  return params[index]


def random_table(n_states, is_complex, seed=0):
  rng = np.random.default_rng(seed)
  table = rng.normal(size=n_states)
  if is_complex:
    table = table + 1j * rng.uniform(-np.pi, np.pi, size=n_states)
  return jnp.asarray(table)


def marshall_diagonal(lat):  # [2**N]
  """Diagonal of U = prod_{i in sublattice 1} sz_i in all_states() order."""
  x = np.asarray(hamiltonians.TransverseFieldIsing(lat, 0.0).hilbert
                 .all_states())
  return np.prod(np.where(lat.sublattice == 1, x, 1.0), axis=-1)


class LatticeTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("chain_pbc", lattice_lib.chain(6), 6, 6),
      ("chain_obc", lattice_lib.chain(6, pbc=False), 5, 4),
      ("chain2_pbc", lattice_lib.chain(2), 1, 0),
      ("chain3_pbc", lattice_lib.chain(3), 3, 0),
      ("chain4_pbc", lattice_lib.chain(4), 4, 2),
      ("square4_pbc", lattice_lib.square(4), 32, 32),
      ("rect3x4_obc", lattice_lib.square(3, 4, pbc=False), 17, 12),
      ("rect2x4_pbc", lattice_lib.square(2, 4), 12, 8),
      ("square2_pbc", lattice_lib.square(2), 4, 2),
      ("rect2x3_pbc", lattice_lib.square(2, 3), 9, 6),
  )
  def test_bond_counts_and_uniqueness(self, lat, n_nn, n_nnn):
    nn, nnn = lat.bonds(1), lat.bonds(2)
    chex.assert_shape(nn, (n_nn, 2))
    chex.assert_shape(nnn, (n_nnn, 2))
    pairs = [tuple(p) for p in np.concatenate([nn, nnn]).tolist()]
    self.assertLen(set(pairs), len(pairs))  # No duplicates across orders.
    for i, j in pairs:
      self.assertLess(i, j)  # Canonical order, no self-bonds.
      self.assertLess(j, lat.n_sites)

  def test_chain_bonds(self):
    np.testing.assert_array_equal(
        lattice_lib.chain(4).bonds(1), [[0, 1], [1, 2], [2, 3], [0, 3]])
    np.testing.assert_array_equal(lattice_lib.chain(4).bonds(2),
                                  [[0, 2], [1, 3]])
    np.testing.assert_array_equal(
        lattice_lib.chain(4, pbc=False).bonds(2), [[0, 2], [1, 3]])
    np.testing.assert_array_equal(lattice_lib.chain(2).bonds(1), [[0, 1]])

  def test_square_bonds_are_at_the_right_distance(self):
    lat = lattice_lib.square(3, 4, pbc=False)
    coords = lat.coordinates()
    for order, offsets in ((1, [0, 1]), (2, [1, 1])):
      for i, j in lat.bonds(order):
        np.testing.assert_array_equal(sorted(np.abs(coords[i] - coords[j])),
                                      offsets)
    # Raster order: site = row * Ly + col.
    np.testing.assert_array_equal(coords[6], [1, 2])

  @parameterized.named_parameters(
      ("chain6_pbc", lattice_lib.chain(6), True),
      ("chain5_pbc", lattice_lib.chain(5), False),
      ("chain5_obc", lattice_lib.chain(5, pbc=False), True),
      ("square4_pbc", lattice_lib.square(4), True),
      ("rect3x4_pbc", lattice_lib.square(3, 4), False),
      ("rect3x4_obc", lattice_lib.square(3, 4, pbc=False), True),
      ("rect2x3_pbc", lattice_lib.square(2, 3), False),
  )
  def test_bipartite(self, lat, expected):
    self.assertEqual(lat.is_bipartite, expected)

  def test_sublattice(self):
    np.testing.assert_array_equal(lattice_lib.chain(4).sublattice,
                                  [0, 1, 0, 1])
    np.testing.assert_array_equal(lattice_lib.square(2, 3).sublattice,
                                  [0, 1, 0, 1, 0, 1])

  def test_bad_sizes_raise(self):
    with self.assertRaisesRegex(ValueError, "n=1: must be an integer >= 2"):
      lattice_lib.chain(1)
    with self.assertRaisesRegex(ValueError, "n=4.0: must be"):
      lattice_lib.chain(4.0)
    with self.assertRaisesRegex(ValueError, "ly=0: must be an integer >= 2"):
      lattice_lib.square(4, 0)
    with self.assertRaisesRegex(ValueError, "at least 2 rows"):
      lattice_lib.Lattice((1, 4))
    with self.assertRaisesRegex(ValueError, "shape=\\(2, 2, 2\\): must be"):
      lattice_lib.Lattice((2, 2, 2))
    with self.assertRaisesRegex(ValueError, "order=3: must be one of 1, 2"):
      lattice_lib.chain(4).bonds(3)

  def test_hashable(self):
    self.assertEqual(lattice_lib.square(4), lattice_lib.Lattice((4, 4), True))
    self.assertLen({lattice_lib.chain(4), lattice_lib.Lattice(4)}, 1)


class HamiltonianTest(chex.TestCase):

  @parameterized.named_parameters(
      (f"{h}_{lat}_{kind}", h, lat, kind == "complex")
      for h, lat, kind in itertools.product(HAMILTONIANS, LATTICES,
                                            ("real", "complex")))
  def test_local_energy_matches_dense(self, ham_name, lattice_name,
                                      is_complex):
    ham = HAMILTONIANS[ham_name](LATTICES[lattice_name])
    x = ham.hilbert.all_states()  # [2**N, N]
    table = random_table(x.shape[0], is_complex)
    psi = np.exp(np.asarray(table))
    expected = ham.to_dense() @ psi / psi
    # One compiled program is faster than many eager ops compiled one by one.
    e_loc = jax.jit(ham.local_energy, static_argnums=0)(table_log_psi, table,
                                                         x)
    chex.assert_shape(e_loc, (x.shape[0],))
    self.assertEqual(jnp.iscomplexobj(e_loc), is_complex)
    np.testing.assert_allclose(e_loc, expected, rtol=1e-10, atol=1e-10)

  @parameterized.named_parameters((name, name) for name in HAMILTONIANS)
  def test_connected_structure(self, ham_name):
    lat = LATTICES["rect2x4_pbc"]
    ham = HAMILTONIANS[ham_name](lat)
    x = ham.hilbert.all_states()[::7]
    xp, mels = jax.jit(ham.connected)(x)
    m = ham.n_connected
    chex.assert_shape(xp, (x.shape[0], m, lat.n_sites))
    chex.assert_shape(mels, (x.shape[0], m))
    self.assertEqual(mels.dtype, jnp.float64)
    np.testing.assert_array_equal(xp[:, 0], x)  # Diagonal entry first.
    self.assertTrue(np.all(np.abs(xp) == 1))
    # Zero elements keep x; nonzero off-diagonal ones change it.
    changed = np.any(xp != x[:, None], axis=-1)
    np.testing.assert_array_equal(changed[:, 1:], mels[:, 1:] != 0)

  def test_connected_keeps_float32(self):
    ham = hamiltonians.Heisenberg(lattice_lib.chain(6))
    x = jnp.asarray(ham.hilbert.all_states(), jnp.float32)
    xp, mels = ham.connected(x)
    self.assertEqual(xp.dtype, jnp.float32)
    self.assertEqual(mels.dtype, jnp.float32)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(
      ("chunk1", 1), ("chunk3", 3), ("chunk4", 4), ("chunk7", 7),
      ("chunk_larger_than_batch", 64))
  def test_chunked_equals_unchunked(self, chunk_size):
    ham = hamiltonians.J1J2(lattice_lib.square(2, 4), J2=0.5)
    x = ham.hilbert.all_states()[jnp.array([3, 17, 60, 99, 100, 128, 200,
                                            201, 250, 254])]
    table = random_table(2**8, is_complex=True, seed=1)

    @self.variant
    def local_energy(params, x):
      return ham.local_energy(table_log_psi, params, x, chunk_size=chunk_size)

    full = ham.local_energy(table_log_psi, table, x)
    np.testing.assert_allclose(local_energy(table, x), full, rtol=1e-12)

  def test_chunk_bounds_the_batch_seen_by_log_psi(self):
    ham = hamiltonians.TransverseFieldIsing(lattice_lib.chain(6), h=1.0)
    x = ham.hilbert.all_states()[:10]
    table = random_table(2**6, is_complex=False)
    seen = []

    def log_psi(params, x):
      seen.append(x.shape[0])
      return table_log_psi(params, x)

    jax.jit(lambda p, x: ham.local_energy(log_psi, p, x, chunk_size=4))(
        table, x)
    self.assertEqual(seen, [4 * ham.n_connected])

  def test_local_energy_of_eigenstate_is_constant(self):
    # psi = ground state of the Marshall-rotated Heisenberg chain: positive,
    # so log psi is real, and E_loc = E_0 on every state of its support.
    # The singlet ground state lies in the S^z = 0 sector (70 states).
    ham = hamiltonians.Heisenberg(lattice_lib.chain(8), marshall_sign=True)
    energies, vectors = scipy.linalg.eigh(ham.to_sparse(sector=0).toarray())
    ground = vectors[:, 0] * np.sign(vectors[:, 0].sum())
    self.assertTrue(np.all(ground > 1e-8))  # Marshall's sign rule.
    states = hamiltonians.sz_sector_states(8, 0)
    x = ham.hilbert.all_states()[states]
    table = jnp.full(2**8, -np.inf).at[states].set(np.log(ground))
    e_loc = jax.jit(ham.local_energy, static_argnums=0)(table_log_psi, table,
                                                         x)
    np.testing.assert_allclose(e_loc, energies[0], atol=1e-10)

  @parameterized.named_parameters(
      (f"{h}_{lat}", h, lat)
      for h, lat in itertools.product(("heisenberg", "j1j2"), LATTICES))
  def test_marshall_sign_is_the_sublattice_rotation(self, base_name,
                                                    lattice_name):
    lat = LATTICES[lattice_name]
    h = HAMILTONIANS[base_name](lat).to_dense()
    h_rotated = HAMILTONIANS[f"{base_name}_marshall"](lat).to_dense()
    u = marshall_diagonal(lat)  # Orthogonal, so the spectrum is unchanged.
    np.testing.assert_array_equal(h_rotated, u[:, None] * h * u[None, :])

  def test_marshall_flips_only_nearest_neighbour_exchange(self):
    lat = lattice_lib.chain(6)
    terms = hamiltonians.J1J2(lat, J2=0.5, marshall_sign=True).terms()
    n_nn = len(lat.bonds(1))
    np.testing.assert_allclose(terms.flip_coeffs[:n_nn], -0.5)
    np.testing.assert_allclose(terms.flip_coeffs[n_nn:], 0.25)
    np.testing.assert_allclose(terms.zz_coeffs[:n_nn], 0.25)
    np.testing.assert_allclose(terms.zz_coeffs[n_nn:], 0.125)

  @parameterized.named_parameters(
      ("heisenberg", "heisenberg"), ("j1j2", "j1j2"), ("tfim", "tfim"))
  def test_dense_is_symmetric_and_real(self, ham_name):
    h = HAMILTONIANS[ham_name](LATTICES["rect2x4_pbc"]).to_dense()
    self.assertEqual(h.dtype, np.float64)
    np.testing.assert_array_equal(h, h.T)

  def test_known_matrices(self):
    # Two sites, one bond: S.S has triplet 1/4 and singlet -3/4.
    heisenberg = hamiltonians.Heisenberg(lattice_lib.chain(2))
    np.testing.assert_allclose(np.linalg.eigvalsh(heisenberg.to_dense()),
                               [-0.75, 0.25, 0.25, 0.25])
    # Order (down, down), (down, up), (up, down), (up, up).
    tfim = hamiltonians.TransverseFieldIsing(lattice_lib.chain(2), h=0.5)
    np.testing.assert_allclose(
        tfim.to_dense(),
        [[-1, -.5, -.5, 0], [-.5, 1, 0, -.5], [-.5, 0, 1, -.5],
         [0, -.5, -.5, -1]])

  def test_sector_matrix_is_a_block_of_the_full_one(self):
    ham = hamiltonians.J1J2(lattice_lib.chain(8), J2=0.3)
    for sz in (0, 1, -2):
      states = hamiltonians.sz_sector_states(8, sz)
      x = np.asarray(ham.hilbert.all_states())[states]
      np.testing.assert_array_equal(x.sum(axis=-1), 2 * sz)
      full = ham.to_dense()
      np.testing.assert_array_equal(ham.to_sparse(sector=sz).toarray(),
                                    full[np.ix_(states, states)])

  def test_description_and_hash(self):
    ham = hamiltonians.J1J2(lattice_lib.square(4), J2=0.5)
    self.assertEqual(ham.description(),
                     {"type": "J1J2", "shape": [4, 4], "pbc": True,
                      "J2": 0.5, "J1": 1.0, "marshall_sign": False})
    self.assertEqual(hash(ham), hash(hamiltonians.J1J2(
        lattice_lib.Lattice((4, 4)), J2=0.5)))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "bipartite"):
      hamiltonians.Heisenberg(lattice_lib.chain(5), marshall_sign=True)
    with self.assertRaisesRegex(ValueError, "bipartite"):
      hamiltonians.J1J2(lattice_lib.square(2, 3), J2=0.5, marshall_sign=True)
    # Open boundaries make any chain bipartite.
    hamiltonians.Heisenberg(lattice_lib.chain(5, pbc=False),
                            marshall_sign=True)
    with self.assertRaisesRegex(ValueError, "lattice=\\(4,\\): must be"):
      hamiltonians.Heisenberg((4,))
    with self.assertRaisesRegex(ValueError, "h=nan: must be a finite real"):
      hamiltonians.TransverseFieldIsing(lattice_lib.chain(4), h=float("nan"))
    ham = hamiltonians.TransverseFieldIsing(lattice_lib.chain(4), h=1.0)
    with self.assertRaisesRegex(ValueError, r"x must have shape \[B, 4\]"):
      ham.connected(jnp.ones((3, 5)))
    with self.assertRaisesRegex(ValueError, "chunk_size=0: must be a positive"):
      ham.local_energy(table_log_psi, None, jnp.ones((3, 4)), chunk_size=0)
    with self.assertRaisesRegex(ValueError, "conserves S\\^z"):
      ham.to_sparse(sector=0)
    with self.assertRaisesRegex(ValueError, "sector"):
      hamiltonians.Heisenberg(lattice_lib.chain(4)).to_sparse(sector=0.5)
    with self.assertRaisesRegex(ValueError, "N <= 14"):
      hamiltonians.Heisenberg(lattice_lib.square(4)).to_dense()


class ExactTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("tfim_chain10_obc",
       hamiltonians.TransverseFieldIsing(lattice_lib.chain(10, False), 1.0),
       None, ("tfim_chain", dict(N=10, h=1.0, bc="open"))),
      ("tfim_chain10_pbc",
       hamiltonians.TransverseFieldIsing(lattice_lib.chain(10), 1.0),
       None, ("tfim_chain", dict(N=10, h=1.0, bc="periodic"))),
      ("heisenberg_chain10_pbc",
       hamiltonians.Heisenberg(lattice_lib.chain(10)),
       None, ("heisenberg_chain", dict(N=10, bc="periodic"))),
      ("heisenberg_chain10_obc",
       hamiltonians.Heisenberg(lattice_lib.chain(10, False)),
       None, ("heisenberg_chain", dict(N=10, bc="open"))),
      ("heisenberg_chain10_obc_marshall_sz0",
       hamiltonians.Heisenberg(lattice_lib.chain(10, False),
                               marshall_sign=True),
       0, ("heisenberg_chain", dict(N=10, bc="open"))),
      ("heisenberg_square4_sz0",
       hamiltonians.Heisenberg(lattice_lib.square(4)),
       0, ("heisenberg_square", dict(L=4, J2=0.0, bc="periodic"))),
      ("heisenberg_square4_marshall_sz0",
       hamiltonians.Heisenberg(lattice_lib.square(4), marshall_sign=True),
       0, ("heisenberg_square", dict(L=4, J2=0.0, bc="periodic"))),
      ("j1j2_square4_sz0",
       hamiltonians.J1J2(lattice_lib.square(4), J2=0.5),
       0, ("heisenberg_square", dict(L=4, J2=0.5, bc="periodic"))),
      ("j1j2_square4_marshall_sz0",
       hamiltonians.J1J2(lattice_lib.square(4), J2=0.5, marshall_sign=True),
       0, ("heisenberg_square", dict(L=4, J2=0.5, bc="periodic"))),
      ("tfim_square4",
       hamiltonians.TransverseFieldIsing(lattice_lib.square(4), 3.04),
       None, ("tfim_square", dict(L=4, h=3.04, bc="periodic"))),
  )
  def test_ground_state_energy_matches_reference(self, ham, sector, ref):
    expected = reference.reference_energy(ref[0], **ref[1])
    energy = exact.ground_state_energy(ham, sector=sector, cache=False)
    self.assertIsInstance(energy, float)
    np.testing.assert_allclose(energy, expected.energy, atol=1e-6)
    self.assertEqual(reference.reference_for(ham), expected)

  def test_j1j2_chain_marshall_keeps_ground_energy(self):
    lat = lattice_lib.chain(10)
    energies = [
        exact.ground_state_energy(
            hamiltonians.J1J2(lat, J2=0.5, marshall_sign=m), cache=False)
        for m in (False, True)]
    np.testing.assert_allclose(energies[1], energies[0], atol=1e-10)
    # Majumdar-Ghosh point: the dimer product state, E_0 = -3/8 per site.
    np.testing.assert_allclose(energies[0], -3 / 8 * 10, atol=1e-10)

  @parameterized.named_parameters(
      ("dense_solver_sz0", hamiltonians.Heisenberg(lattice_lib.chain(8)), 0),
      ("lanczos_whole_space", hamiltonians.TransverseFieldIsing(
          lattice_lib.square(3), 1.1), None),
      ("lanczos_sz1", hamiltonians.J1J2(lattice_lib.square(2, 6), J2=0.4), 1))
  def test_ground_state_is_the_eigenvector(self, ham, sector):
    energy, vector = exact.ground_state(ham, sector=sector)
    h = ham.to_sparse(sector=sector)
    self.assertEqual(vector.shape, (h.shape[0],))
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, rtol=1e-12)
    np.testing.assert_allclose(h @ vector, energy * vector, atol=1e-8)
    np.testing.assert_allclose(
        energy, exact.ground_state_energy(ham, sector=sector, cache=False),
        rtol=1e-12)

  def test_basis_rows_number_the_sparse_matrix(self):
    # Rows of to_sparse: the bit string of the sites (site 0 most
    # significant, up = 1), in the sector its place among the sector's.
    n = 6
    states = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
    np.testing.assert_array_equal(exact.basis_rows(states), np.arange(2**n))
    in_sector = states[states.sum(axis=1) == 2]  # S^z = 1
    rows = exact.basis_rows(in_sector, sector=1)
    np.testing.assert_array_equal(rows, np.arange(len(in_sector)))
    ham = hamiltonians.Heisenberg(lattice_lib.chain(n))
    np.testing.assert_allclose(  # the diagonal: sum of s_i s_j / 4
        ham.to_sparse(sector=1).diagonal()[rows],
        np.sum(in_sector * np.roll(in_sector, -1, axis=1), axis=1) / 4)
    with self.assertRaisesRegex(ValueError, r"states\[0\] is not in the "
                                r"sector of total S\^z = 1"):
      exact.basis_rows(states[:1], sector=1)

  def test_small_systems_use_the_dense_solver(self):
    ham = hamiltonians.Heisenberg(lattice_lib.chain(2))
    self.assertAlmostEqual(exact.ground_state_energy(ham, cache=False), -0.75)
    self.assertAlmostEqual(
        exact.ground_state_energy(ham, sector=1, cache=False), 0.25)

  def test_cache_round_trip(self):
    cache_dir = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()),
                             "ed")
    ham = hamiltonians.Heisenberg(lattice_lib.chain(8))
    energy = exact.ground_state_energy(ham, sector=0, cache=cache_dir)
    (path,) = cache_dir.iterdir()  # One file and no temp files left behind.
    record = json.loads(path.read_text())
    self.assertEqual(record["energy"], energy)
    self.assertEqual(record["key"], exact.cache_key(ham, 0))
    # The second call reads the file instead of diagonalizing.
    with mock.patch.object(exact, "_lowest_eigenvalue",
                           side_effect=AssertionError("recomputed")):
      self.assertEqual(
          exact.ground_state_energy(ham, sector=0, cache=cache_dir), energy)
      self.assertEqual(exact.ground_state_energy(
          hamiltonians.Heisenberg(lattice_lib.chain(8)), sector=0.0,
          cache=str(cache_dir)), energy)
    # Another sector or coupling is another entry.
    exact.ground_state_energy(ham, cache=cache_dir)
    exact.ground_state_energy(hamiltonians.Heisenberg(lattice_lib.chain(8),
                                                      J=2.0),
                              sector=0, cache=cache_dir)
    self.assertLen(list(cache_dir.iterdir()), 3)
    # A corrupt file is recomputed and rewritten.
    path.write_text("{not json")
    self.assertEqual(
        exact.ground_state_energy(ham, sector=0, cache=cache_dir), energy)
    self.assertEqual(json.loads(path.read_text())["energy"], energy)

  def test_cache_dir_from_environment(self):
    cache_dir = self.enterContext(tempfile.TemporaryDirectory())
    with mock.patch.dict(os.environ, {exact.CACHE_ENV_VAR: cache_dir}):
      self.assertEqual(exact.default_cache_dir(), pathlib.Path(cache_dir))
      exact.ground_state_energy(
          hamiltonians.TransverseFieldIsing(lattice_lib.chain(4), 1.0))
    self.assertLen(os.listdir(cache_dir), 1)

  def test_unwritable_cache_still_computes(self):
    # A directory below a plain file cannot be created, even by root.
    blocker = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()),
                           "not_a_dir")
    blocker.write_text("")
    cache_dir = blocker / "ed"
    ham = hamiltonians.Heisenberg(lattice_lib.chain(4))
    np.testing.assert_allclose(
        exact.ground_state_energy(ham, cache=cache_dir), -2.0, atol=1e-12)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "N=21"):
      exact.ground_state_energy(
          hamiltonians.Heisenberg(lattice_lib.chain(21)), cache=False)
    with self.assertRaisesRegex(ValueError, "conserves S\\^z"):
      exact.ground_state_energy(hamiltonians.TransverseFieldIsing(
          lattice_lib.chain(4), 1.0), sector=0, cache=False)
    with self.assertRaisesRegex(ValueError, "cache must be"):
      exact.ground_state_energy(
          hamiltonians.Heisenberg(lattice_lib.chain(4)), cache=None)


class ReferenceTest(parameterized.TestCase):

  def test_lookup(self):
    ref = reference.reference_energy("heisenberg_square", L=4, J2=0.5,
                                     bc="periodic")
    self.assertEqual(ref, reference.Reference(
        energy=-8.4579234, energy_per_site=-0.5286202, error=None,
        method="ed", n_sites=16))
    qmc = reference.reference_energy("heisenberg_square", L=10, bc="open")
    self.assertIsNone(qmc.energy)
    self.assertEqual((qmc.method, qmc.error), ("qmc", 2e-7))
    chain = reference.reference_energy("tfim_chain", N=16, bc="open")
    np.testing.assert_allclose(chain.energy_per_site, -20.0163879 / 16)

  def test_table_is_consistent(self):
    table = reference.load_table()
    self.assertIn("Pauli matrices", table["_about"])
    for model in reference.models():
      for entry in table[model]:
        self.assertIn(entry["method"], ("ed", "qmc", "dmrg"))
        self.assertEqual("error" in entry, entry["method"] == "qmc")
        if "E" in entry and "E_per_site" in entry:
          n = entry.get("N", entry.get("L", 0) ** 2)
          np.testing.assert_allclose(entry["E"] / n, entry["E_per_site"],
                                     atol=1e-7)

  def test_lookup_errors_list_what_exists(self):
    with self.assertRaisesRegex(KeyError, "heisenberg_square"):
      reference.reference_energy("kagome")
    with self.assertRaisesRegex(ValueError, "(?s)2 entries match.*L=4, J2=0.5"):
      reference.reference_energy("heisenberg_square", L=4)
    with self.assertRaisesRegex(ValueError, "(?s)no entry matches.*N=20"):
      reference.reference_energy("tfim_chain", N=12)
    with self.assertRaisesRegex(ValueError, r"unknown parameters \['M'\]"):
      reference.reference_energy("tfim_chain", M=12)

  def test_reference_for_without_entry(self):
    self.assertIsNone(reference.reference_for(
        hamiltonians.TransverseFieldIsing(lattice_lib.chain(10), h=2.0)))
    self.assertIsNone(reference.reference_for(
        hamiltonians.Heisenberg(lattice_lib.square(4), J=2.0)))
    self.assertIsNone(reference.reference_for(
        hamiltonians.Heisenberg(lattice_lib.square(2, 4))))


if __name__ == "__main__":
  absltest.main()

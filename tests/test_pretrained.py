"""The trained models that ship with the package (zoo.pretrained).

Each one loads into the model of its config, and its energy is the one it
records: exactly, by a sum over every configuration of its space with the
Hamiltonian as a sparse matrix, where there are few enough sites (<=
EXACT_SITES), else from fresh exact samples, within 4 standard errors (the
record's and the fresh estimate's together). All in the slow tier.
"""

import jax
import numpy as np
import pytest
from absl.testing import absltest, parameterized

from zoo import build, pretrained
from zoo.physics import exact
from zoo.vmc import train as vmc_train

EXACT_SITES = 16  # up to 2^16 configurations summed
FRESH_SAMPLES = 256  # the rest: an estimate CI can afford
# A symmetrized model's local energies cost a pass of its base per group
# element and connected configuration (16 x 73 per sample on the 6 x 6):
# fewer samples, a looser but still independent estimate.
SYMMETRIZED_SAMPLES = 64
SIGMAS = 4.0

NAMES = pretrained.names()
LARGE = tuple(
    name for name in NAMES
    if np.prod(pretrained.load(name).config.lattice.shape) > EXACT_SITES)


def exact_energy(model, params, hamiltonian) -> float:
  """sum_x p(x) E_loc(x) over the model's whole space, E_loc = (H psi)(x) /
  psi(x) with H the sparse matrix of `hamiltonian` (in its S^z sector where
  the model has one), psi from one pass over every configuration."""
  states = np.asarray(model.hilbert.all_states())
  log_psi = np.asarray(jax.jit(model.log_psi)(params, states))
  probs = np.exp(model.machine_pow * log_psi.real)
  np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-10)
  total = model.hilbert.total
  sector = None if total is None else total / 2
  rows = exact.basis_rows(states, sector)
  h = hamiltonian.to_sparse(sector=sector)
  psi = np.zeros(h.shape[0], complex)
  psi[rows] = np.exp(log_psi - log_psi.real.max())
  h_psi = (h @ psi)[rows]
  kept = probs > 0
  return float(np.sum(probs[kept] * (h_psi[kept] / psi[rows][kept]).real))


@pytest.mark.slow  # every trained model evaluated
class PretrainedTest(parameterized.TestCase):

  def test_the_zoo_ships_models(self):
    self.assertNotEmpty(NAMES)
    for name in NAMES:
      record = pretrained.load(name).record
      for field in ("energy", "error", "steps", "wall_s"):
        self.assertIn(field, record, msg=name)

  @parameterized.named_parameters((name, name) for name in NAMES)
  def test_energy_is_the_recorded_one(self, name):
    trained = pretrained.load(name)
    model, params = trained.model()
    hamiltonian = build.hamiltonian(trained.config)
    recorded, recorded_error = (trained.record["energy"],
                                trained.record["error"])
    if name not in LARGE:
      energy = exact_energy(model, params, hamiltonian)
      tolerance = SIGMAS * recorded_error
    else:
      samples = (SYMMETRIZED_SAMPLES
                 if trained.config.model.get("symmetries") else FRESH_SAMPLES)
      evaluate = vmc_train.make_evaluate(model, hamiltonian, samples)
      stats = evaluate(params, jax.random.key(2026))
      energy = float(stats.mean)
      tolerance = SIGMAS * float(np.hypot(stats.error, recorded_error))
    self.assertLessEqual(
        abs(energy - recorded), tolerance,
        msg=f"{name}: energy {energy:.6f}, recorded {recorded:.6f} +- "
        f"{recorded_error:.1e}")


if __name__ == "__main__":
  absltest.main()

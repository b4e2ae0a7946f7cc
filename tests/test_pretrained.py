"""The trained models that ship with the package (zoo.pretrained).

Each one loads into the model of its config, and its energy is the one it
records: by a sum over every configuration of its space where there are
few enough (<= EXACT_SITES sites) and the model is not symmetrized, else
(the slow tier) from fresh exact samples, within 4 standard errors (the
record's and the fresh estimate's together).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized

from zoo import build, pretrained
from zoo.vmc import local_energy
from zoo.vmc import train as vmc_train

EXACT_SITES = 16  # up to 2^16 configurations summed
FRESH_SAMPLES = 512  # the rest: an estimate CI can afford
# A symmetrized model's local energies cost a pass of its base per group
# element and connected configuration (16 x 73 per sample on the 6 x 6):
# fewer samples, a looser but still independent estimate.
SYMMETRIZED_SAMPLES = 64
SIGMAS = 4.0

NAMES = pretrained.names()


def _summed(name: str) -> bool:
  """Whether the check sums over the whole space: few sites, and a plain
  model (a symmetrized one costs a pass of its base per group element)."""
  config = pretrained.load(name).config
  return (int(np.prod(config.lattice.shape)) <= EXACT_SITES
          and not config.model.get("symmetries"))


LARGE = tuple(name for name in NAMES if not _summed(name))


class PretrainedTest(parameterized.TestCase):

  def test_the_zoo_ships_models(self):
    self.assertNotEmpty(NAMES)
    for name in NAMES:
      record = pretrained.load(name).record
      for field in ("energy", "error", "steps", "wall_s"):
        self.assertIn(field, record, msg=name)

  @parameterized.named_parameters(
      *[(name, name) for name in NAMES if name not in LARGE])
  def test_energy_is_the_recorded_one(self, name):
    self.check_energy_is_the_recorded_one(name)

  # The sampled checks of large lattices and symmetrized models: the slow
  # tier.
  @parameterized.named_parameters(*[(name, name) for name in LARGE])
  @pytest.mark.slow
  def test_energy_is_the_recorded_one_slow_tier(self, name):
    self.check_energy_is_the_recorded_one(name)

  def check_energy_is_the_recorded_one(self, name):
    trained = pretrained.load(name)
    model, params = trained.model()
    hamiltonian = build.hamiltonian(trained.config)
    recorded, recorded_error = (trained.record["energy"],
                                trained.record["error"])
    if name not in LARGE:
      states = model.hilbert.all_states()
      log_psi = jax.jit(model.log_psi)(params, states)
      probs = jnp.exp(model.machine_pow * log_psi.real)
      np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-10)
      e_loc = jax.jit(lambda p, x: local_energy.local_energies(
          model, hamiltonian, p, x))(params, states)
      energy = float(jnp.sum(probs * e_loc.real))
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

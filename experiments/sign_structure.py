r"""How much of a trained model's error is its signs, how much its
amplitudes: the model against the exact ground state, summed over its whole
space (no sampling), on lattices that exact diagonalization holds.

  python -m experiments.sign_structure --run=pretrained:j1j2_square_4x4_stages
  python -m experiments.sign_structure --run=WORKDIR --json=signs.json

`--run` names a trained model (`pretrained:NAME`) or a finished run's
workdir (for `experiments.stages`, a stage's: `WORKDIR/stage2`). Printed,
each energy as its relative error against the ground-state energy E0:

  model         <psi|H|psi>, the model itself
  exact signs   the model's amplitudes |psi(s)| with the ground state's signs
  model phases  the ground state's amplitudes with the model's phases
  overlap       |<psi0|psi>|^2
  right signs   the weight of the ground state whose sign the model has
                (its phase, after the global phase, within pi/2 of it)
  phase spread  sqrt(sum_s |psi(s)|^2 phi(s)^2), phi(s) in (-pi, pi] the
                model's phase about its mean (that of sum_s |psi(s)| psi(s))

"exact signs" far below "model" says the signs hold the model back;
"model phases" far above it, that the amplitudes are the better half. The
ground state is that of the model's space (its S^z sector, or the whole
space); a degenerate one makes the comparison depend on which eigenvector
the solver returns.
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import app
from absl import flags
import jax
import numpy as np

import experiments
from experiments import workdir as workdir_lib
from zoo import build, transfer
from zoo.physics import exact

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "pretrained:NAME or a finished run's workdir.")
flags.DEFINE_string("json", None, "Also write the figures here (refuses an "
                    "existing file).")


def decompose(model, params, hamiltonian) -> dict[str, float]:
  """The figures of the module docstring for `model` (a `zoo.models.Model`
  of at most `exact.MAX_ED_SITES` sites) and `params` under `hamiltonian`.
  """
  hilbert = model.hilbert
  sector = None if hilbert.total is None else hilbert.total / 2
  # First: it refuses a lattice too large before any state is listed.
  e0, ground = exact.ground_state(hamiltonian, sector=sector)
  states = np.asarray(hilbert.all_states())
  log_psi = np.asarray(jax.jit(model.log_psi)(params, states))
  h = hamiltonian.to_sparse(sector=sector)
  psi = np.zeros(len(ground), complex)
  psi[exact.basis_rows(states, sector)] = np.exp(log_psi - log_psi.real.max())
  psi /= np.linalg.norm(psi)
  overlap = np.vdot(ground, psi)
  unit = lambda z: z / max(abs(z), 1e-300)
  # The model's phase against the ground state (after the global phase of
  # their overlap), and about its own mean.
  phase = np.angle(psi * np.conj(unit(overlap)))
  own = np.angle(psi * np.conj(unit(np.sum(psi * np.abs(psi)))))
  relative = lambda v: abs(
      np.vdot(v, h @ v).real / np.vdot(v, v).real - e0) / abs(e0)
  weights = np.abs(psi) ** 2
  return dict(
      exact=e0, model=relative(psi),
      exact_signs=relative(np.abs(psi) * np.sign(ground)),
      model_phases=relative(np.abs(ground) * np.exp(1j * phase)),
      overlap=float(abs(overlap) ** 2),
      right_signs=float(np.sum(ground ** 2 * (np.cos(phase)
                                              * np.sign(ground) > 0))),
      phase_spread=float(np.sqrt(np.sum(weights * own ** 2))),
      states=len(ground))


def report(figures: dict[str, Any]) -> str:
  return "\n".join([
      f"E0 = {figures['exact']:.10f} ({figures['states']} states)",
      f"model         rel. error {figures['model']:.3e}",
      f"exact signs   rel. error {figures['exact_signs']:.3e}  (the model's "
      "amplitudes, the ground state's signs)",
      f"model phases  rel. error {figures['model_phases']:.3e}  (the ground "
      "state's amplitudes, the model's phases)",
      f"overlap       {figures['overlap']:.6f}",
      f"right signs   {figures['right_signs']:.6f} of the ground state's "
      "weight",
      f"phase spread  {figures['phase_spread']:.3e} rad"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.run:
    raise app.UsageError("--run: name a trained model (pretrained:NAME) or a "
                         "finished run's workdir")
  if FLAGS.json and os.path.exists(FLAGS.json):
    raise app.UsageError(f"--json={FLAGS.json}: the file exists; pick "
                         "another path (nothing is overwritten)")
  with experiments.clean_errors(ValueError):
    try:
      source = workdir_lib.load_source(FLAGS.run)
    except ValueError as e:
      raise ValueError(str(e).replace("init.from=", "--run=", 1)) from None
    model = build.model(source.config)
    figures = decompose(model, transfer.params_for(source, model),
                        build.hamiltonian(source.config))
  print(report(figures))
  if FLAGS.json:
    with open(FLAGS.json, "x") as f:
      f.write(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
  experiments.run(main)

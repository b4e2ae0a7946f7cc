r"""Time to accuracy, end to end: our default run against NetKet 3.23's.

The job (the default row, `python -m experiments.vmc`): the transverse-field
Ising chain, N = 20, J = h = 1, periodic; a dense autoregressive model of 2
layers x 16 features, float64; 1024 exact samples per step; SR with diagonal
shift 1e-3; the learning rate cosine-decayed to a tenth over the steps; the
final energy from 65,536 fresh samples, against exact diagonalization.

  ours:   `experiments.vmc.train` of the default config (the whole run as
          the command does it: compilation, checkpoints, the evaluation),
          FastARNNDense, our SR (minSR: parameters outnumber samples);
  NetKet: ARNNDense (its fast dense twin cannot be sampled under jit),
          ARDirectSampler, MCState, `VMC_SR` (its kernel form), the same
          schedule through optax, then `expect` over 65,536 samples.

SR conventions differ by a factor 2: NetKet's update is the natural
gradient of E, ours of E / 2 (NetKet multiplies the force by 2), so
NetKet's lr x equals our lr 2x. --ours_lr and --netket_lr take lists and
every (lr, seed) pair runs, one after the other; the table prints wall
time (training and evaluation; NetKet's includes its compilation, as ours)
and the relative error.

  nk-venv/bin/python -m experiments.time_to_accuracy --seeds=0,1,2
  nk-venv/bin/python -m experiments.time_to_accuracy --sides=ours \
      --ours_lr=0.2 --steps=150

`--case=heisenberg_6x6`: the Heisenberg model on the periodic 6 x 6 square
lattice in S^z = 0, both sides for the same wall-clock `--budget`, training
and evaluation together, against exact diagonalization:

  ours:   `experiments.stages` of `heisenberg_square_6x6` (a GRU 2 x 16):
          the plain model for 45% of the budget at 256 samples a step,
          minSR, then the model averaged over the point group and the spin
          flip (16 elements) at lr 0.01 for 35% (compilation included);
          each stage's evaluation of `--eval_samples` fresh exact samples
          takes most of the rest;
  NetKet: what a physicist would run instead, `RBMSymm` over the lattice's
          36 translations (alpha 4, 149 parameters), `MetropolisExchange`
          between neighbours in S^z = 0, 1008 samples a step in 16 chains,
          `VMC_SR` with NetKet's tutorial lr 0.01 and diagonal shift 0.1,
          stopped by a callback at 90% of the budget (its evaluation
          takes the rest), then `--eval_samples` samples of the chains.
NetKet's `Heisenberg` is written in Pauli matrices (4x ours): its
energies are divided by 4. `--ours_lr` and `--netket_lr` are not read in
this case; `--steps` neither (the budget ends both).

  .venv/bin/python -m experiments.time_to_accuracy --case=heisenberg_6x6 \
      --budget=10m --seeds=0,1,2 --eval_samples=4096
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time

from absl import app, flags, logging
import jax
import numpy as np

from configs import experiments as experiment_configs
from experiments import stages
from experiments import vmc as vmc_launcher
from zoo import checks

FLAGS = flags.FLAGS
flags.DEFINE_list("sides", ["ours", "netket"], "ours and/or netket.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the runs.")
flags.DEFINE_list("ours_lr", ["0.2"], "Our peak learning rates.")
flags.DEFINE_list("netket_lr", ["0.1"], "NetKet's peak learning rates.")
flags.DEFINE_integer("steps", 300, "Steps of every run.")
flags.DEFINE_integer("samples", 1024, "Samples per step.")
flags.DEFINE_integer("eval_samples", 65536, "Samples of the final energy.")
flags.DEFINE_string("json", None, "Save every row here.")
flags.DEFINE_enum("case", "tfim_chain", ["tfim_chain", "heisenberg_6x6"],
                  "The job: the default row, or the 6 x 6 Heisenberg model "
                  "for a wall-clock budget.")
flags.DEFINE_string("budget", "10m", "heisenberg_6x6: each run's wall time.")

ROW = experiment_configs.DEFAULT


def ours(seed: int, lr: str) -> dict:
  lr = float(lr)
  cfg = experiment_configs.get_config_of(
      ROW, f"seed={seed},lr={lr},steps={FLAGS.steps},"
      f"samples={FLAGS.samples},eval_samples={FLAGS.eval_samples}")
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    result = vmc_launcher.train(cfg, workdir)
    wall = time.perf_counter() - start
  return dict(energy=result.energy, error=result.error, wall_s=wall,
              relative_error=result.relative_error, exact=result.exact)


def netket(seed: int, lr: str) -> dict:
  lr = float(lr)
  import netket as nk  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from zoo import build  # pylint: disable=import-outside-toplevel
  from zoo import physics  # pylint: disable=import-outside-toplevel

  cfg = experiment_configs.get_config_of(ROW)
  n = cfg.lattice.shape[0]
  h = cfg.hamiltonian.h
  exact = physics.exact_or_reference(build.hamiltonian(cfg)).energy
  graph = nk.graph.Chain(n, pbc=True)
  hilbert = nk.hilbert.Spin(0.5, n)
  # NetKet's Ising is -h sum sx + J sum sz sz: J = -1 is our J = +1.
  hamiltonian = nk.operator.IsingJax(hilbert, graph, h=h, J=-1.0,
                                     dtype=np.float64)
  model = nk.models.ARNNDense(hilbert=hilbert, layers=2, features=16,
                              param_dtype=np.float64)
  start = time.perf_counter()
  vstate = nk.vqs.MCState(nk.sampler.ARDirectSampler(hilbert), model,
                          n_samples=FLAGS.samples, seed=seed,
                          sampler_seed=seed + 1)
  schedule = optax.cosine_decay_schedule(lr, FLAGS.steps, alpha=0.1)
  driver = nk.driver.VMC_SR(hamiltonian, nk.optimizer.Sgd(schedule),
                            diag_shift=cfg.optimizer.sr.diag_shift,
                            variational_state=vstate)
  driver.run(FLAGS.steps, out=None, show_progress=False)
  vstate.n_samples = FLAGS.eval_samples
  stats = vstate.expect(hamiltonian)
  jax.block_until_ready(stats.mean)
  wall = time.perf_counter() - start
  energy = float(np.real(stats.mean))
  return dict(energy=energy, error=float(stats.error_of_mean), wall_s=wall,
              relative_error=abs(energy - exact) / abs(exact), exact=exact)


SQUARE = "heisenberg_square_6x6"
# Our recipe for the 6 x 6 case: the budget's fraction and the overrides of
# each stage (`experiments.stages`).
SQUARE_STAGES = (
    (0.45, "vmc.n_samples=256 vmc.steps=1000000 optimizer.sr.solver=minsr"),
    (0.35, "model.symmetries=point_group,spin_flip vmc.n_samples=256 "
          "vmc.steps=1000000 optimizer.sr.solver=minsr "
          "optimizer.learning_rate=0.01"),
)


def ours_square(seed: int, lr: str) -> dict:
  del lr  # the recipe's
  budget = checks.duration("budget", FLAGS.budget)
  plan = [dict(stages.parse_stage(text), **{
      "vmc.budget": f"{fraction * budget:.0f}s", "vmc.seed": seed,
      "vmc.eval_samples": FLAGS.eval_samples})
          for fraction, text in SQUARE_STAGES]
  cfg = experiment_configs.get_config_of(SQUARE, None)
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    records = stages.run_stages(cfg, plan, workdir)
    wall = time.perf_counter() - start
  last = records[-1]
  return dict(energy=last["energy"], error=last["error"], wall_s=wall,
              relative_error=last["relative_error"], exact=last["exact"],
              steps=sum(r["steps"] for r in records))


def netket_square(seed: int, lr: str) -> dict:
  import netket as nk  # pylint: disable=import-outside-toplevel
  from zoo import build  # pylint: disable=import-outside-toplevel
  from zoo import physics  # pylint: disable=import-outside-toplevel

  del lr  # NetKet's tutorial rate
  budget = checks.duration("budget", FLAGS.budget)
  cfg = experiment_configs.get_config_of(SQUARE, None)
  exact = physics.exact_or_reference(build.hamiltonian(cfg), 0).energy
  side = cfg.lattice.shape[0]
  graph = nk.graph.Square(side, pbc=True)
  hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0)
  hamiltonian = nk.operator.Heisenberg(hilbert, graph, dtype=np.float64)
  model = nk.models.RBMSymm(symmetries=graph.translation_group(), alpha=4,
                            param_dtype=np.float64)
  start = time.perf_counter()
  sampler = nk.sampler.MetropolisExchange(hilbert, graph=graph, n_chains=16)
  vstate = nk.vqs.MCState(sampler, model, n_samples=1008, seed=seed,
                          sampler_seed=seed + 1)
  driver = nk.driver.VMC_SR(hamiltonian, nk.optimizer.Sgd(0.01),
                            diag_shift=0.1, variational_state=vstate)
  steps = []

  def in_budget(step, log_data, driver):
    del log_data, driver
    steps.append(step)
    return time.perf_counter() - start < 0.9 * budget

  driver.run(10**7, out=None, show_progress=False, callback=in_budget)
  vstate.n_samples = FLAGS.eval_samples
  stats = vstate.expect(hamiltonian)
  jax.block_until_ready(stats.mean)
  wall = time.perf_counter() - start
  energy = float(np.real(stats.mean)) / 4  # Pauli matrices -> spins
  return dict(energy=energy, error=float(stats.error_of_mean) / 4,
              wall_s=wall, relative_error=abs(energy - exact) / abs(exact),
              exact=exact, steps=len(steps))


def main(argv):
  del argv
  if FLAGS.case == "heisenberg_6x6":
    # One recipe a side (the docstring's), not a list of rates.
    runs = {"ours": (ours_square, ["recipe"]),
            "netket": (netket_square, ["recipe"])}
  else:
    runs = {"ours": (ours, FLAGS.ours_lr), "netket": (netket, FLAGS.netket_lr)}
  rows = []
  for side in FLAGS.sides:
    run, rates = runs[side]
    for lr in rates:
      for seed in FLAGS.seeds:
        logging.info("%s lr %s seed %s", side, lr, seed)
        row = dict(side=side, lr=lr, seed=int(seed), **run(int(seed), lr))
        rows.append(row)
        steps = f"  {row['steps']} steps" if "steps" in row else ""
        print(f"{side:7s} lr {lr:<6s} seed {seed}  "
              f"{row['wall_s']:6.1f} s  E = {row['energy']:.6f} +- "
              f"{row['error']:.1e}  rel.err {row['relative_error']:.2e}"
              f"{steps}", flush=True)
  print("# medians over seeds")
  for side in FLAGS.sides:
    for lr in runs[side][1]:
      group = [r for r in rows if r["side"] == side and r["lr"] == lr]
      print(f"{side:7s} lr {lr:<6s} wall "
            f"{statistics.median(r['wall_s'] for r in group):6.1f} s  "
            "rel.err "
            f"{statistics.median(r['relative_error'] for r in group):.2e}")
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main)

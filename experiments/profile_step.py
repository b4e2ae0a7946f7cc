r"""Where does a VMC step spend its time? Each stage jitted and timed alone.

The stages of `zoo.vmc.make_vmc`'s step, on the same samples and params:

  sample     exact samples (`zoo.sampler.draw`)
  e_loc      local energies (`zoo.vmc.local_energy.local_energies`)
  e_loc_full the same by full passes over every connected configuration
             (what a model without prefix reuse pays; for comparison)
  gradient   the energy gradient, one vjp of log psi
  sr         with --sr: the SR solve (jacobian and linear solve)
  sr_problem with --sr: what minSR solves alone (the jacobian, or A A^T)
  step       the whole jitted step, for the sum

Medians of --rounds alternating rounds, after a compiling call each.

  python -m experiments.profile_step                  # TFIM chain N = 64
  python -m experiments.profile_step --case=tfim_2d_8
  python -m experiments.profile_step --case=heisenberg_2d_10 --sr
  python -m experiments.profile_step --case=heisenberg_2d_10 --memory=1024,4096
  python -m experiments.profile_step --config=heisenberg_square_6x6 --sr
"""

from __future__ import annotations

import statistics
import time

from absl import flags
import jax

import experiments
from experiments import bench_step
import zoo
import zoo.build
from zoo import physics, sampler
from zoo import vmc as zoo_vmc
from zoo.vmc import estimators, local_energy, sr as sr_lib

FLAGS = flags.FLAGS

# The cases of `bench_vs_netket`'s VMC steps: a periodic lattice, a
# Hamiltonian, the fast model (3 x 16, kernel 3 in 1D and (3, 5) in 2D).
CASES = {
    "tfim_1d_64": dict(dim=1, size=64, hamiltonian="tfim"),
    "tfim_2d_8": dict(dim=2, size=8, hamiltonian="tfim"),
    "heisenberg_2d_10": dict(dim=2, size=10, hamiltonian="heisenberg"),
    "heisenberg_1d_64": dict(dim=1, size=64, hamiltonian="heisenberg"),
    # The default run's model (`python -m experiments.vmc`): fast dense
    # 2 x 16, float64 (use with --sr).
    "tfim_1d_20_dense": dict(dim=1, size=20, hamiltonian="tfim",
                             dense=True),
}

flags.DEFINE_enum("case", "tfim_1d_64", list(CASES), "The lattice and "
                  "Hamiltonian.")
flags.DEFINE_string("config", None, "Instead of --case: a registered "
                    "experiment's model and Hamiltonian, in "
                    "experiments.bench_step's case syntax "
                    "(NAME[:arg][|section.field=value|...]).")
flags.DEFINE_integer("samples", 1024, "Samples per step.")
flags.DEFINE_integer("layers", 3, "Masked layers.")
flags.DEFINE_integer("features", 16, "Hidden features.")
flags.DEFINE_enum("dtype", "float32", ["float32", "float64"], "Parameters.")
flags.DEFINE_bool("sr", False, "Time the step with SR (diag shift 1e-3).")
flags.DEFINE_integer("rounds", 5, "Timed rounds.")
flags.DEFINE_list("memory", [], "Instead of timing: XLA's compiled memory "
                  "(arguments + outputs + temporaries) of one whole step for "
                  "each of these sample counts.")
flags.DEFINE_integer("chunk", None, "--memory: the step's chunk_size "
                     "(samples at once through each stage); None: none.")


def build(case: dict):
  size = case["size"]
  lattice = physics.chain(size) if case["dim"] == 1 else physics.square(size)
  hamiltonian = (physics.TransverseFieldIsing(lattice, h=1.0)
                 if case["hamiltonian"] == "tfim"
                 else physics.Heisenberg(lattice, marshall_sign=True))
  if case.get("dense"):
    return zoo.FastARNNDense(hamiltonian.hilbert, layers=2, features=16,
                             param_dtype="float64"), hamiltonian
  family = zoo.FastARNNConv1D if case["dim"] == 1 else zoo.FastARNNConv2D
  model = family(hamiltonian.hilbert, layers=FLAGS.layers,
                 features=FLAGS.features,
                 kernel_size=3 if case["dim"] == 1 else (3, 5),
                 param_dtype=FLAGS.dtype)
  return model, hamiltonian


def stages(model, hamiltonian, n: int, sr: bool) -> dict:
  """name -> a no-argument call running that stage once, blocked."""
  params, _ = model.init(jax.random.key(0))
  key = jax.random.key(1)
  chunk = sampler.chunk_for(n, None, None, model=model)
  draw = jax.jit(lambda p, k: sampler.draw(model, p, k, n, chunk, None))
  x, _ = draw(params, key)
  e_loc = jax.jit(lambda p, x: local_energy.local_energies(
      model, hamiltonian, p, x))
  e_full = jax.jit(lambda p, x: hamiltonian.local_energy(model.log_psi, p, x))
  local = e_loc(params, x)
  gradient = jax.jit(lambda p, x, e: estimators.energy_gradient(
      model.log_psi, p, x, e))
  optimizer = zoo_vmc.make_optimizer(
      "sgd", 0.01, sr=dict(diag_shift=1e-3) if sr else None)
  vmc = zoo_vmc.make_vmc(model, hamiltonian, optimizer, n_samples=n)
  state = vmc.init(jax.random.key(0))
  calls = {
      "sample": lambda: draw(params, key),
      "e_loc": lambda: e_loc(params, x),
      "e_loc_full": lambda: e_full(params, x),
      "gradient": lambda: gradient(params, x, local),
      "step": lambda: vmc.step(state),
  }
  if sr:
    solve = sr_lib.stochastic_reconfiguration(diag_shift=1e-3)
    grad = gradient(params, x, local)

    @jax.jit
    def sr_call(params, x, local, grad):
      problem = lambda solver: sr_lib.make_sr_problem(
          model.log_psi, params, x, local, chunk_size=None,
          solver=solver,
          live=model.live_parameters(), probe=model.layer_probe())
      updates, _ = solve.update(grad, solve.init(params), params,
                                sr_problem=problem)
      return updates
    calls["sr"] = lambda: sr_call(params, x, local, grad)
    jacobian = jax.jit(lambda p, x, e: sr_lib.make_sr_problem(
        model.log_psi, p, x, e, solver="minsr", live=model.live_parameters(),
        probe=model.layer_probe())._replace(transpose=None))
    calls["sr_problem"] = lambda: jacobian(params, x, local)
  return {name: (lambda call=call: jax.block_until_ready(call()))
          for name, call in calls.items()}


def time_calls(calls: dict, rounds: int) -> dict:
  """name -> seconds of each of `rounds` alternating rounds over `calls`
  (`stages`), after a compiling call each."""
  for call in calls.values():
    call()  # compile
  times = {name: [] for name in calls}
  for _ in range(rounds):
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      times[name].append(time.perf_counter() - start)
  return times


def step_memory(model, hamiltonian, n: int, sr: bool) -> dict:
  """MiB of one compiled step of n samples, from XLA's memory analysis."""
  optimizer = zoo_vmc.make_optimizer(
      "sgd", 0.01, sr=dict(diag_shift=1e-3) if sr else None)
  vmc = zoo_vmc.make_vmc(model, hamiltonian, optimizer, n_samples=n,
                         chunk_size=FLAGS.chunk)
  state = vmc.init(jax.random.key(0))
  memory = vmc.step.lower(state).compile().memory_analysis()
  mib = lambda b: b / 2**20
  return dict(total=mib(memory.argument_size_in_bytes
                        + memory.output_size_in_bytes
                        + memory.temp_size_in_bytes),
              temp=mib(memory.temp_size_in_bytes))


def main(argv):
  del argv
  if FLAGS.config:
    cfg = bench_step.config(FLAGS.config)
    model, hamiltonian = zoo.build.model(cfg), zoo.build.hamiltonian(cfg)
    FLAGS.case = FLAGS.config
  else:
    model, hamiltonian = build(CASES[FLAGS.case])
  if FLAGS.memory:
    for n in FLAGS.memory:
      m = step_memory(model, hamiltonian, int(n), FLAGS.sr)
      print(f"{FLAGS.case} step of {n} samples, chunk {FLAGS.chunk}: "
            f"{m['total']:.1f} MiB "
            f"(temporaries {m['temp']:.1f})")
    return
  calls = stages(model, hamiltonian, FLAGS.samples, FLAGS.sr)
  times = time_calls(calls, FLAGS.rounds)
  print(f"# {FLAGS.case}: {model}, {hamiltonian.n_connected} connected per "
        f"sample, {FLAGS.samples} samples, {jax.device_count()} device(s); "
        f"median of {FLAGS.rounds} (s)")
  step = statistics.median(times["step"])
  for name, values in times.items():
    median = statistics.median(values)
    print(f"{name:11s} {median:8.4f}  {100 * median / step:5.1f}% of a step")


if __name__ == "__main__":
  experiments.run(main)

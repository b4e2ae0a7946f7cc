r"""How long does a registered experiment's VMC step take? Prints figures.

Each case is a registered experiment (`python -m experiments.catalog list`),
optionally with an argument and field overrides, separated by "|":

  python -m experiments.bench_step --cases=heisenberg_square_6x6
  python -m experiments.bench_step \
      --cases='heisenberg_square_6x6,heisenberg_square_6x6|vmc.n_samples=256'
  python -m experiments.bench_step \
      --cases='j1j2_square_fast_dense,j1j2_square_fast_dense|model.param_dtype=float64'

The whole jitted `vmc.step` (sampling, local energies, gradient and the
optimizer, SR included), after a compiling call; the cases are timed in
alternating rounds (a noisy machine slows every case alike) and the median
of --rounds is printed per case, with one JSON line each under --json.
Only the public API is used, so the same file runs in another checkout
(e.g. main in a worktree) for a side-by-side figure.
"""

from __future__ import annotations

import ast
import json
import statistics
import time

from absl import app
from absl import flags
import jax

import experiments
from zoo import build
from zoo import registry

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_list("cases", ["heisenberg_square_6x6"],
                    "NAME[:arg][|section.field=value|...] per case.")
  flags.DEFINE_integer("rounds", 5, "Timed rounds.")
  flags.DEFINE_bool("json", False, "Print one JSON line per case too.")


def config(case: str):
  """The experiment config of a case string (module doc)."""
  name, *overrides = case.split("|")
  cfg = registry.get_config(name)
  for override in overrides:
    path, _, text = override.partition("=")
    if not text:
      raise app.UsageError(
          f"case {case!r}: override {override!r} must be section.field=value")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    section, _, field = path.rpartition(".")
    target = cfg
    for part in section.split(".") if section else ():
      target = target[part]
    target[field] = value
  return cfg


def first_step(run):
  """The state after one step of a built experiment (the compiling call)."""
  state = run.vmc.init(jax.random.key(0))
  state, stats = run.vmc.step(state)  # compiles
  jax.block_until_ready(stats)
  return state


def time_rounds(steps: dict, rounds: int) -> dict:
  """case -> seconds of each of `rounds` alternating rounds over `steps`
  (case -> (experiment, state), whose states advance)."""
  times = {case: [] for case in steps}
  for _ in range(rounds):
    for case, (run, state) in steps.items():
      start = time.perf_counter()
      state, stats = run.vmc.step(state)
      jax.block_until_ready(stats)
      times[case].append(time.perf_counter() - start)
      steps[case] = (run, state)
  return times


def main(argv):
  del argv
  steps = {}
  for case in FLAGS.cases:
    with experiments.clean_errors(ValueError, KeyError, AttributeError):
      run = build.experiment(config(case))
    steps[case] = (run, first_step(run))
    print(f"# {case}: {run.model}, {run.model.parameter_count()} parameters",
          flush=True)
  times = time_rounds(steps, FLAGS.rounds)
  for case in FLAGS.cases:
    median = statistics.median(times[case])
    print(f"{case}: {median:.3f} s a step (median of {FLAGS.rounds}; "
          f"{min(times[case]):.3f} - {max(times[case]):.3f})")
    if FLAGS.json:
      print(json.dumps(dict(case=case, step_s=median, times=times[case])))


if __name__ == "__main__":
  define_flags()
  app.run(main)

r"""The VMC launcher: flags -> config -> `train(cfg, workdir)`.

  python -m experiments.vmc                       # tfim_chain_fast_dense
  python -m experiments.vmc --config=heisenberg_square_fast_conv2d \
      --config.vmc.steps=2000 --workdir=workdirs/heis4x4
  python -m experiments.vmc --config=tfim_chain_fast_conv1d:tiny=True

`--config` takes a registered experiment (`configs/experiments.py`),
`name:arg` or `path.py[:arg]`, then `--config.section.field=value`
overrides; `--workdir` defaults to `workdirs/<config name>`
(`experiments.workdir`: its files, resuming, refusal, `--overwrite`). A bad
config value ends the command with one line naming the field, the value and
what is expected (`--traceback` shows the traceback); a non-finite energy
stops the run and keeps the last good checkpoint. `experiments.runtime`:
several devices (`--cpu_devices=auto`) and processes; only process 0 writes.

With `vmc.budget`, training ends at that wall time (or `vmc.steps`) with a
checkpoint; the elapsed seconds live in the optimizer state
(`zoo.vmc.ElapsedState`), which the checkpoints hold, and are set before
each read of `log.every_k` steps, so a resumed run continues its budget and
its schedule (`zoo.vmc.BudgetSchedule`).

The final energy is one evaluation of `vmc.eval_samples` fresh exact samples
(a key of its own) with its standard error and the relative error against
`zoo.physics.exact_or_reference`.
"""

from __future__ import annotations

import json
import os
import time
from typing import NamedTuple, Sequence

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from configs import experiments as experiment_configs
import experiments
from experiments import plots
from experiments import runtime
from experiments import workdir as workdir_lib
from zoo import build, checks, physics, sharding, vmc

DEFAULT_CONFIG = experiment_configs.DEFAULT

# One line of metrics.jsonl: the stats of step `step`, measured with the
# parameters before its update; relative_error only when an exact energy is
# known; wall_s: seconds of training so far (interpolated within a K-step
# read, compilation included).
METRIC_FIELDS = ("step", "energy", "error", "variance", "grad_norm",
                 "update_norm", "entropy", "temperature", "learning_rate",
                 "relative_error", "wall_s")
STAT_FIELDS = METRIC_FIELDS[1:8]
LOG_FIELDS = ("every_k", "checkpoint_every", "keep_checkpoints")
EVAL_STREAM = 1  # the final evaluation's samples: a stream of their own


class Result(NamedTuple):
  """What `train` returns: the final state and evaluation; `exact` and
  `exact_method` from `zoo.physics.exact_or_reference` (or None)."""
  state: vmc.TrainState
  energy: float
  error: float
  variance: float
  exact: float | None
  exact_method: str | None
  relative_error: float | None
  steps: int
  eval_samples: int

  def summary(self) -> str:
    """One line: E, its error, the exact value and the relative error."""
    line = (f"E = {self.energy:.8f} +- {self.error:.2e} ({self.eval_samples} "
            f"samples after {self.steps} steps)")
    if self.exact is not None:
      line += (f"  exact = {self.exact:.8f} ({self.exact_method})  "
               f"relative error = {self.relative_error:.2e}")
    return line


def check_log(cfg) -> None:
  """The launcher's own section, `log`."""
  with checks.in_section("log"):
    checks.known_fields(cfg.log, LOG_FIELDS)
    every_k = checks.positive_int("every_k", cfg.log.every_k)
    every = checks.positive_int("checkpoint_every", cfg.log.checkpoint_every)
    checks.positive_int("keep_checkpoints", cfg.log.keep_checkpoints)
    if every % every_k:
      raise checks.FieldError("checkpoint_every", every,
                              f"must be a multiple of log.every_k={every_k}")


def _format_seconds(seconds: float) -> str:
  minutes, seconds = divmod(int(round(seconds)), 60)
  if not minutes:
    return f"{seconds}s"
  return (f"{minutes}m{seconds:02d}s" if minutes < 60
          else f"{minutes // 60}h{minutes % 60:02d}m")


class Run(NamedTuple):
  """A checked experiment in its prepared workdir (see `prepare`)."""
  cfg: object
  workdir: str
  experiment: build.Experiment
  fresh: bool  # an old run was set aside: start afresh
  write: bool  # this process writes the files


def prepare(cfg, workdir: str, *, overwrite: bool = False,
            mesh: jax.sharding.Mesh | None = None) -> Run:
  """Checks and builds `cfg` and claims `workdir` for it; nothing runs.

  Raises:
    ValueError: a config field is invalid (`zoo.checks.FieldError`), or the
      workdir holds another config's run (`workdir.WorkdirError`).
  """
  check_log(cfg)
  start_from = cfg.get("init", {}).get("from")
  source = workdir_lib.load_source(start_from) if start_from else None
  experiment = build.experiment(cfg, mesh, source)
  write = jax.process_index() == 0
  fresh = workdir_lib.prepare(cfg, workdir, overwrite, write)
  return Run(cfg, workdir, experiment, fresh, write)


def train(cfg, workdir: str, *, overwrite: bool = False,
          stop_after: int | None = None,
          mesh: jax.sharding.Mesh | None = None) -> Result:
  """Runs (or resumes) the VMC experiment `cfg` in `workdir`.

  Args:
    cfg: an experiment config (`configs/experiments.py`).
    workdir: its files (`experiments.workdir`); created if absent.
    overwrite: if the workdir holds a run of a different config, move its
      files into previous-<time>/ and start afresh instead of refusing.
    stop_after: stop (with a checkpoint) once this many steps are done in
      all, before vmc.steps: the run resumes later where it stopped.
    mesh: a batch mesh (`zoo.sharding.batch_mesh`) to shard the samples
      over; None runs on the default device.

  Raises:
    ValueError: see `prepare`.
    FloatingPointError: a step gave a non-finite energy (or variance or
      update); the checkpoints keep the last good state.
  """
  return run(prepare(cfg, workdir, overwrite=overwrite, mesh=mesh),
             stop_after=stop_after)


def run(prepared: Run, stop_after: int | None = None) -> Result:
  """Trains a prepared run to `vmc.steps` (or `stop_after`, or the end of
  `vmc.budget`) and evaluates."""
  start = time.perf_counter()
  cfg, workdir, write = prepared.cfg, prepared.workdir, prepared.write
  ham, model, run_vmc = (prepared.experiment.hamiltonian,
                         prepared.experiment.model, prepared.experiment.vmc)
  logging.info("Model %r: %d parameters", model, model.parameter_count())
  known = physics.exact_or_reference(ham, model.hilbert.total)
  exact_value, exact_method = known if known else (None, None)
  if known:
    logging.info("Exact energy (%s): %.10f", exact_method, exact_value)

  key = jax.random.key(prepared.experiment.seed)
  state = None if prepared.fresh else workdir_lib.resume(
      workdir, jax.eval_shape(run_vmc.init, key))
  if state is None:
    state = run_vmc.init(key, prepared.experiment.initial_params)
    logging.info("Starting a new run in %s%s", workdir,
                 f" from {cfg.init['from']}" if prepared.experiment.initial_params
                 is not None else "")
  else:
    state = run_vmc.put(state)
    logging.info("Resuming from step %d in %s", int(state.step), workdir)
  done = int(state.step)

  metrics_path = os.path.join(workdir, workdir_lib.METRICS_FILE)
  # Cut the metrics back to the checkpoint (and drop a torn last line).
  rows = [] if prepared.fresh else [
      r for r in workdir_lib.read_metrics(metrics_path) if r["step"] < done]
  if write:
    workdir_lib.atomic_write(
        metrics_path, lambda f: f.write(workdir_lib.metric_lines(rows)), "w")
  wall_offset = rows[-1]["wall_s"] if rows else 0.0
  budget = prepared.experiment.budget_s
  if budget is not None:
    # The training seconds the checkpoint holds (`zoo.vmc.ElapsedState`):
    # the budget and the schedule continue from them.
    wall_offset = float(vmc.elapsed_seconds(state.opt_state))
  plot_path = os.path.join(workdir, workdir_lib.PLOT_FILE)
  plot_title = f"{type(ham).__name__} {ham.lattice}"

  steps = prepared.experiment.steps
  target = steps if stop_after is None else min(steps, stop_after)
  every_k, checkpoint_every = cfg.log.every_k, cfg.log.checkpoint_every
  first_done, train_start = done, time.perf_counter()
  last_read, rate_since = train_start, None
  elapsed = lambda: wall_offset + time.perf_counter() - train_start
  out_of_time = budget is not None and elapsed() >= budget
  step_s = None  # seconds a step in the last read
  while done < target and not out_of_time:
    k = min(every_k - done % every_k, target - done)
    if budget is not None:
      read_elapsed = elapsed()
      # A read ends near the budget, not up to every_k steps past it: the
      # first read is one step (it compiles), the last what the time left
      # holds. Every read length runs in one compiled program (`length`).
      k = 1 if step_s is None else min(k, max(1, int(
          (budget - read_elapsed) / step_s)))
      state = state._replace(opt_state=vmc.set_elapsed(state.opt_state,
                                                       read_elapsed))
    read_start = time.perf_counter()
    new_state, stats = run_vmc.run(state, k, every_k)
    stats = {name: np.asarray(value)[:k]
             for name, value in jax.device_get(stats)._asdict().items()}
    now = time.perf_counter()
    bad = np.flatnonzero(~np.all([np.isfinite(stats[name]) for name in (
        "energy", "variance", "grad_norm", "update_norm")], axis=0))
    good = k if not bad.size else int(bad[0])
    rates = np.broadcast_to(prepared.experiment.learning_rate(
        np.arange(done, done + k), *(() if budget is None else
                                     (read_elapsed,))), (k,))
    new_rows = []
    for i in range(good):
      row = {"step": done + i}
      row.update({name: float(stats[name][i]) for name in STAT_FIELDS})
      row["learning_rate"] = float(rates[i])
      if exact_value is not None:
        row["relative_error"] = abs(row["energy"] - exact_value) / abs(
            exact_value)
      row["wall_s"] = wall_offset + (last_read - train_start) + (
          (now - last_read) * (i + 1) / k)
      new_rows.append(row)
    if write:
      with open(metrics_path, "a") as f:
        f.write(workdir_lib.metric_lines(new_rows))
    rows += new_rows
    last_read = now
    if bad.size:
      if write:
        plots.plot_energy(plot_path, rows, exact_value, plot_title)
      saved = workdir_lib.checkpoints(workdir)
      last = f"{saved[-1][1]} (step {saved[-1][0]})" if saved else "none yet"
      raise FloatingPointError(
          f"non-finite statistics at step {done + good}: energy="
          f"{stats['energy'][good]}, variance={stats['variance'][good]}, "
          f"update_norm={stats['update_norm'][good]}. The last good "
          f"checkpoint is {last}; nothing later was saved. Lower "
          "optimizer.learning_rate or raise optimizer.sr.diag_shift, then "
          "rerun to resume from it.")
    state, done = new_state, done + k
    step_s = (now - read_start) / k  # the first read's counts compilation
    if budget is not None:
      seconds = wall_offset + now - train_start
      state = state._replace(opt_state=vmc.set_elapsed(state.opt_state,
                                                       seconds))
      out_of_time = seconds >= budget
      if out_of_time:
        logging.info("Budget of %s reached at step %d",
                     _format_seconds(budget), done)
    if write and (done % checkpoint_every == 0 or done == target
                  or out_of_time):
      workdir_lib.save_checkpoint(workdir, state, cfg.log.keep_checkpoints)
      plots.plot_energy(plot_path, rows, exact_value, plot_title)
    mean = float(np.mean(stats["energy"]))
    # Steps/s after the first read, which includes the compilation.
    if rate_since is None:
      rate_since, rate = (done, now), (done - first_done) / (now - train_start)
    elif now > rate_since[1]:
      rate = (done - rate_since[0]) / (now - rate_since[1])
    message = (f"step {done}/{steps}  E = {mean:.6f} +- "
               f"{float(np.mean(stats['error'])):.1e}  var = "
               f"{float(np.mean(stats['variance'])):.2e}")
    if exact_value is not None:
      message += f"  rel.err = {abs(mean - exact_value) / abs(exact_value):.1e}"
    left = (target - done) / rate
    if budget is not None:  # the budget may end the run first
      left = min(left, max(budget - (wall_offset + now - train_start), 0.0))
    logging.info("%s  %.2f steps/s  ETA %s", message, rate,
                 _format_seconds(left))

  if write and steps == 0:
    # An evaluation only: its parameters are checkpointed all the same, so
    # a later run or stage can start from them and save_pretrained find them.
    workdir_lib.save_checkpoint(workdir, state, cfg.log.keep_checkpoints)
  eval_key = jax.random.fold_in(key, EVAL_STREAM)
  final = jax.device_get(prepared.experiment.evaluate(state.params, eval_key))
  energy, error, variance = map(float, final)
  relative = (None if exact_value is None
              else abs(energy - exact_value) / abs(exact_value))
  result = Result(state=state, energy=energy, error=error, variance=variance,
                  exact=exact_value, exact_method=exact_method,
                  relative_error=relative, steps=done,
                  eval_samples=cfg.vmc.eval_samples)
  record = {k: v for k, v in result._asdict().items() if k != "state"}
  record.update(summary=result.summary(), wall_s=time.perf_counter() - start)
  if write:
    workdir_lib.atomic_write(
        os.path.join(workdir, workdir_lib.RESULT_FILE),
        lambda f: f.write(json.dumps(record, indent=1) + "\n"), "w")
  logging.info("Done in %s: %s", _format_seconds(record["wall_s"]),
               result.summary())
  return result


# ---------------------------------------------------------------------------
# The command.


def config_name(spec: str) -> str:
  """The name of a config spec: `name` of `name:arg`, the stem of `path.py`."""
  head = spec.partition(":")[0]
  if head.endswith(".py"):
    return os.path.splitext(os.path.basename(head))[0]
  return head


def run_command(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  runtime.setup()
  cfg = flags.FLAGS.config
  spec = experiments.config_spec(flags.FLAGS["config"])
  workdir = flags.FLAGS.workdir or os.path.join("workdirs", config_name(spec))
  traceback = flags.FLAGS.traceback
  with experiments.clean_errors(ValueError, traceback=traceback):
    prepared = prepare(cfg, workdir, overwrite=flags.FLAGS.overwrite,
                       mesh=sharding.batch_mesh())
  logging.info("Config %s, workdir %s:\n%s", spec, workdir, cfg)
  with experiments.clean_errors(FloatingPointError,
                                workdir_lib.CheckpointMismatch,
                                traceback=traceback):
    result = run(prepared)
  if runtime.is_main_process():
    print(result.summary(), flush=True)


def main():
  """The entry point of `python -m experiments.vmc`; defines the flags here,
  not at import, so tests and other launchers may import this module."""
  experiments.define_config_flag("config", default=DEFAULT_CONFIG)
  flags.DEFINE_string("workdir", None,
                      "output directory; default workdirs/<config name>")
  flags.DEFINE_bool("overwrite", False,
                    "run in a workdir written by a different config, moving "
                    "its files into previous-<time>/")
  flags.DEFINE_alias("force", "overwrite")
  experiments.define_traceback_flag()
  experiments.run(run_command)


if __name__ == "__main__":
  main()

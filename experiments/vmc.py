r"""The VMC launcher: train a model on a Hamiltonian, with files to resume from.

  python -m experiments.vmc                       # tfim_chain_fast_dense
  python -m experiments.vmc --config=heisenberg_square_fast_conv2d \
      --config.vmc.steps=2000 --workdir=workdirs/heis4x4
  python -m experiments.vmc --config=tfim_chain_fast_conv1d:tiny=True

`--config` takes a registered experiment (`configs/experiments.py`), `name:arg`
or `path.py[:arg]`, then `--config.section.field=value` overrides.
`--workdir` defaults to `workdirs/<config name>` under the current directory.

The workdir holds:
  config.json                the config of the run (`registry.config_from_json`)
  metrics.jsonl              one JSON line per step (see `METRIC_FIELDS`)
  checkpoint_<step>.npz      the newest `log.keep_checkpoints` TrainStates
  energy.png                 energy against the exact value; relative error
  result.json                the final evaluation and the summary

Resuming: a workdir with checkpoints resumes from the newest one and
continues the same trajectory (the random key lives in the TrainState), so an
interrupted run ends where an uninterrupted one would; metrics.jsonl is cut
back to the checkpoint's step and continued. A workdir written by a different
config is refused unless `--overwrite` (alias `--force`) is given, which moves
the old run's files into `previous-<time>/` and starts afresh. Fields that do
not change the trajectory may differ (see `trajectory_fields`): the `log`
section, `vmc.eval_samples`, and `vmc.steps` under a constant learning rate
(to extend a run).

Checkpoints are written atomically (a temporary file in the workdir, fsync,
`os.replace`), so a crash during a save leaves the previous ones intact. A
non-finite energy, variance or update stops the run with a
`FloatingPointError`; the state that produced it is never saved.

Several devices and processes (`experiments.runtime`): `--cpu_devices=auto`
splits the CPU into one JAX device per core; `--coordinator_address`,
`--num_processes` and `--process_id` join a multi-process job. The sample
batch is sharded over all devices (`vmc.n_samples` and `vmc.eval_samples`
must divide evenly); the trajectory does not depend on the device count.
Every process reads the workdir to resume; only process 0 writes to it.

The final energy is one evaluation of `vmc.eval_samples` fresh exact samples
(a key of its own, not the training stream) with its standard error, and
the relative error |E - E0| / |E0| against exact diagonalization for
N <= 20 (cached on disk by `zoo.physics.exact`) or the reference table.

Glossary of shapes: K = steps per read (`log.every_k`), N = sites.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import time
from typing import Any, NamedTuple, Sequence

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from ml_collections import config_dict
from ml_collections import config_flags
import numpy as np

from configs import experiments as experiment_configs
import experiments
from experiments import runtime
from zoo import hilbert as hilbert_lib
from zoo import registry, sampler, sharding, vmc
from zoo.physics import exact
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib
from zoo.physics import reference
from zoo.vmc import estimators

DEFAULT_CONFIG = experiment_configs.DEFAULT

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "energy.png"
RESULT_FILE = "result.json"
CHECKPOINT = re.compile(r"checkpoint_(\d+)\.npz\Z")
# Files a run writes; --overwrite moves these (and only these) aside.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, PLOT_FILE, RESULT_FILE)

# One line of metrics.jsonl: the stats of step `step`, measured with the
# parameters before its update; relative_error only when an exact energy is
# known; wall_s: seconds of training so far (interpolated within a K-step
# read, compilation included).
METRIC_FIELDS = ("step", "energy", "error", "variance", "grad_norm",
                 "update_norm", "learning_rate", "relative_error", "wall_s")
# A stream of its own for the final evaluation's samples.
EVAL_STREAM = 1

HAMILTONIANS = {
    "tfim": hamiltonians.TransverseFieldIsing,
    "heisenberg": hamiltonians.Heisenberg,
    "j1j2": hamiltonians.J1J2,
}


class WorkdirError(ValueError):
  """The workdir holds a run of another config (or files not from a run)."""


class Result(NamedTuple):
  """What `train` returns.

  Attributes:
    state: the final TrainState.
    energy: the final evaluation's mean local energy.
    error: its standard error.
    variance: the variance of its local energies.
    exact: the exact (ED) or reference ground-state energy, or None.
    exact_method: "ed", "qmc", "dmrg", or None.
    relative_error: |energy - exact| / |exact|, or None.
    steps: steps trained.
    eval_samples: samples of the final evaluation.
  """
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


# ---------------------------------------------------------------------------
# From the config to the pieces.


def build_hamiltonian(cfg: config_dict.ConfigDict
                      ) -> hamiltonians.SpinHalfHamiltonian:
  """The Hamiltonian of a `hamiltonian` section."""
  kind = cfg.get("kind")
  if kind not in HAMILTONIANS:
    raise ValueError(
        f"hamiltonian.kind={kind!r} is not one of {tuple(HAMILTONIANS)}")
  couplings = {k: v for k, v in cfg.items()
               if k not in ("kind", "shape", "pbc")}
  known = experiment_configs.HAMILTONIAN_FIELDS[kind]
  unknown = sorted(set(couplings) - set(known))
  if unknown:
    raise ValueError(
        f"hamiltonian.{unknown[0]} does not apply to kind={kind!r}; its "
        f"fields: kind, shape, pbc, {', '.join(known)}")
  shape = tuple(cfg.get("shape", ()))
  if len(shape) == 1:
    lattice = lattice_lib.chain(shape[0], cfg.pbc)
  elif len(shape) == 2:
    lattice = lattice_lib.square(shape[0], shape[1], cfg.pbc)
  else:
    raise ValueError(
        f"hamiltonian.shape={shape!r} must be (N,) or (Lx, Ly)")
  return HAMILTONIANS[kind](lattice, **couplings)


def build_model(cfg: config_dict.ConfigDict,
                hamiltonian: hamiltonians.SpinHalfHamiltonian):
  """The model `cfg.model` on the Hamiltonian's lattice, restricted to the
  sector `cfg.vmc.total_sz` when that is set."""
  total_sz = cfg.vmc.get("total_sz")
  total = None
  if total_sz is not None:
    if isinstance(total_sz, bool) or not isinstance(total_sz, (int, float)):
      raise ValueError(
          f"vmc.total_sz={total_sz!r} must be None or a number (the total "
          "S^z of the sector)")
    if not hamiltonian.terms().conserves_sz:
      raise ValueError(
          f"vmc.total_sz={total_sz!r} needs a Hamiltonian that conserves "
          f"S^z; hamiltonian.kind={cfg.hamiltonian.kind!r} does not (use "
          "None)")
    n = hamiltonian.n_sites
    try:  # zoo.hilbert decides which totals N spins can reach
      total = hilbert_lib.spin_half(n, total_sz).total
    except ValueError:
      raise ValueError(
          f"vmc.total_sz={total_sz!r} is not the total S^z of any "
          f"configuration of {n} spins 1/2 (-{n / 2:g} to {n / 2:g} in "
          "steps of 1)") from None
  hilbert = config_dict.ConfigDict(dict(
      kind="spin_half", shape=tuple(hamiltonian.lattice.shape), total=total))
  return registry.build(config_dict.ConfigDict(dict(model=cfg.model,
                                                    hilbert=hilbert)))


def learning_rate_schedule(cfg: config_dict.ConfigDict, steps: int):
  """(schedule name, its kwargs) for `vmc.make_optimizer`, from `optimizer`."""
  name, lr = cfg.schedule, cfg.learning_rate
  if name == "constant":
    return "constant", {}
  if name == "cosine":
    return "cosine", dict(decay_steps=steps, alpha=cfg.final_lr_fraction)
  if name == "warmup_cosine":
    return "warmup_cosine", dict(warmup_steps=cfg.warmup_steps,
                                 decay_steps=steps,
                                 end_value=lr * cfg.final_lr_fraction)
  raise ValueError(f"optimizer.schedule={name!r} is not one of constant, "
                   "cosine, warmup_cosine")


def build_optimizer(cfg: config_dict.ConfigDict, steps: int):
  """The optax optimizer of an `optimizer` section, and its rate schedule."""
  schedule, schedule_kwargs = learning_rate_schedule(cfg, steps)
  sr = None
  if cfg.sr.enabled:
    sr = dict(diag_shift=cfg.sr.diag_shift, solver=cfg.sr.solver)
  optimizer = vmc.make_optimizer(
      cfg.name, cfg.learning_rate, schedule=schedule,
      schedule_kwargs=schedule_kwargs, sr=sr)
  rate = vmc.SCHEDULES[schedule](float(cfg.learning_rate), **schedule_kwargs)
  return optimizer, rate


def check_config(cfg: config_dict.ConfigDict) -> None:
  """Checks the run fields the library does not; ValueError naming them."""

  def positive_int(path, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
      raise ValueError(
          f"{path}={value!r} must be an integer >= {minimum}")

  positive_int("vmc.steps", cfg.vmc.steps)
  positive_int("vmc.eval_samples", cfg.vmc.eval_samples)
  positive_int("vmc.chunk_size", cfg.vmc.chunk_size, minimum=0)
  positive_int("log.every_k", cfg.log.every_k)
  positive_int("log.checkpoint_every", cfg.log.checkpoint_every)
  positive_int("log.keep_checkpoints", cfg.log.keep_checkpoints)
  if cfg.log.checkpoint_every % cfg.log.every_k:
    raise ValueError(
        f"log.checkpoint_every={cfg.log.checkpoint_every} must be a multiple "
        f"of log.every_k={cfg.log.every_k}")


class Experiment(NamedTuple):
  """The pieces of an experiment config (see `build`)."""
  hamiltonian: hamiltonians.SpinHalfHamiltonian
  model: Any  # a zoo.Wavefunction on the Hamiltonian's lattice
  vmc: vmc.VMC
  learning_rate: Any  # step -> the rate of the optimizer's schedule


def build(cfg: config_dict.ConfigDict, mesh=None) -> Experiment:
  """Checks an experiment config and builds its pieces (nothing runs).

  `mesh` (a `zoo.sharding.batch_mesh`) shards the samples over its devices.
  """
  check_config(cfg)
  hamiltonian = build_hamiltonian(cfg.hamiltonian)
  model = build_model(cfg, hamiltonian)
  optimizer, learning_rate = build_optimizer(cfg.optimizer, cfg.vmc.steps)
  run = vmc.make_vmc(model, hamiltonian, optimizer,
                     n_samples=cfg.vmc.n_samples,
                     chunk_size=cfg.vmc.chunk_size or None, mesh=mesh)
  return Experiment(hamiltonian, model, run, learning_rate)


def exact_energy(hamiltonian: hamiltonians.SpinHalfHamiltonian,
                 total_sz: float | None = None
                 ) -> tuple[float | None, str | None]:
  """(E0, method): ED for N <= 20 (cached on disk), else the reference table.

  total_sz: the sector the model is restricted to, or None.
  """
  if hamiltonian.n_sites <= exact.MAX_ED_SITES:
    # The ground state of an S^z-conserving antiferromagnet on an even
    # number of sites lies in the S^z = 0 sector, which is much smaller.
    sector = (0 if hamiltonian.terms().conserves_sz
              and hamiltonian.n_sites % 2 == 0 else None)
    if total_sz is not None:
      sector = total_sz
    return exact.ground_state_energy(hamiltonian, sector=sector), "ed"
  if total_sz not in (None, 0):
    return None, None  # the reference table holds ground states only
  ref = reference.reference_for(hamiltonian)
  if ref is None:
    return None, None
  energy = ref.energy if ref.energy is not None else (
      ref.energy_per_site * ref.n_sites)
  return float(energy), ref.method


# ---------------------------------------------------------------------------
# Files: atomic writes, checkpoints, metrics, the plot.


def _fsync_directory(path: str) -> None:
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def atomic_write(path: str, write, mode: str = "wb") -> None:
  """Calls `write(file)` on a temporary file next to `path`, fsyncs it and
  renames it over `path`: readers see the old file or the new one, never a
  part."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory,
                             prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  try:
    with os.fdopen(fd, mode) as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's files are private (0600).
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  _fsync_directory(directory)


def _host_state(state: vmc.TrainState) -> vmc.TrainState:
  """The state with its typed key as raw key data (a plain array)."""
  return state._replace(key=jax.random.key_data(state.key))


def checkpoint_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, f"checkpoint_{step:08d}.npz")


def checkpoints(workdir: str) -> list[tuple[int, str]]:
  """(step, path) of every checkpoint in `workdir`, oldest first."""
  if not os.path.isdir(workdir):
    return []
  found = [(int(m.group(1)), os.path.join(workdir, m.group(0)))
           for m in map(CHECKPOINT.match, os.listdir(workdir)) if m]
  return sorted(found)


def save_checkpoint(workdir: str, state: vmc.TrainState,
                    keep: int | None = None) -> str:
  """Writes `state` atomically as checkpoint_<step>.npz; keeps the newest
  `keep` checkpoints (all if None). Returns the path.

  Raises:
    FloatingPointError: if the state holds a NaN or an infinity (nothing is
      written).
  """
  leaves = [np.asarray(leaf)
            for leaf in jax.tree.leaves(jax.device_get(_host_state(state)))]
  for leaf in leaves:
    if leaf.dtype.kind in "fc" and not np.all(np.isfinite(leaf)):
      raise FloatingPointError(
          f"refusing to save a checkpoint of step {int(state.step)}: the "
          "state holds non-finite values")
  step = int(state.step)
  path = checkpoint_path(workdir, step)
  arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
  atomic_write(path, lambda f: np.savez(f, **arrays))
  if keep is not None:
    for _, old in checkpoints(workdir)[:-keep]:
      os.unlink(old)
  return path


def load_checkpoint(path: str, like: vmc.TrainState) -> vmc.TrainState:
  """The TrainState in `path`, with the tree structure of `like` (a state or
  its `jax.eval_shape`).

  Raises:
    ValueError: if the file does not hold a state of that structure.
  """
  template = jax.eval_shape(_host_state, like)
  specs, treedef = jax.tree.flatten(template)
  with np.load(path) as data:
    names = sorted(data.files)
    if names != [f"leaf_{i:05d}" for i in range(len(specs))]:
      raise ValueError(
          f"checkpoint {path} holds {len(names)} arrays; the model and "
          f"optimizer of this config have {len(specs)}")
    leaves = [data[name] for name in names]
  for i, (leaf, spec) in enumerate(zip(leaves, specs)):
    if leaf.shape != spec.shape or leaf.dtype != spec.dtype:
      raise ValueError(
          f"checkpoint {path}: array {i} has shape {leaf.shape} and dtype "
          f"{leaf.dtype}; this config expects {spec.shape} {spec.dtype}")
  state = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
  return state._replace(key=jax.random.wrap_key_data(state.key))


def read_metrics(path: str) -> list[dict[str, Any]]:
  """The lines of metrics.jsonl (a torn last line is dropped)."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        break  # Only a crash mid-write leaves a partial line: the last one.
  return rows


def _metric_lines(rows: Sequence[dict[str, Any]]) -> str:
  return "".join(json.dumps(row) + "\n" for row in rows)


def plot_energy(path: str, rows: Sequence[dict[str, Any]],
                exact_value: float | None, title: str) -> None:
  """energy.png: E per step with its error band and the exact line; below,
  the relative error on a log scale (or the variance, with no exact value)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  steps = np.array([r["step"] for r in rows])
  energy = np.array([r["energy"] for r in rows])
  error = np.array([r["error"] for r in rows])
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
  top.plot(steps, energy, lw=1, label="VMC")
  top.fill_between(steps, energy - error, energy + error, alpha=0.3, lw=0)
  if exact_value is not None:
    top.axhline(exact_value, color="k", ls="--", lw=1, label="exact")
    # Keep the start of training from squashing the converged part.
    spread = max(np.median(np.abs(energy - exact_value)) * 8,
                 abs(exact_value) * 1e-4)
    top.set_ylim(exact_value - spread / 4, exact_value + spread)
    relative = np.abs(energy - exact_value) / abs(exact_value)
    bottom.semilogy(steps, np.maximum(relative, 1e-12), lw=1)
    bottom.set_ylabel("|E - E0| / |E0|")
  else:
    bottom.semilogy(steps, [r["variance"] for r in rows], lw=1)
    bottom.set_ylabel("variance of E_loc")
  top.set_ylabel("energy")
  top.set_title(title)
  top.legend()
  bottom.set_xlabel("step")
  for ax in (top, bottom):
    ax.grid(alpha=0.3)
  fig.tight_layout()
  atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
  plt.close(fig)


# ---------------------------------------------------------------------------
# The workdir.


def _flatten(cfg, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in cfg.items():
    if isinstance(value, (config_dict.ConfigDict, dict)):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def trajectory_fields(cfg: config_dict.ConfigDict) -> dict[str, Any]:
  """The fields that decide the trajectory: every field but the `log`
  section, `vmc.eval_samples`, and `vmc.steps` under a constant schedule
  (a longer run then continues the same trajectory)."""
  fields = _flatten(json.loads(cfg.to_json()))
  ignored = {"vmc.eval_samples"}
  if fields.get("optimizer.schedule") == "constant":
    ignored.add("vmc.steps")
  return {k: v for k, v in fields.items()
          if not k.startswith("log.") and k not in ignored}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
  return [f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
          for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _move_aside(workdir: str) -> str:
  """Moves a previous run's files into previous-<time>/; returns it."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
  target = os.path.join(workdir, f"previous-{stamp}")
  os.makedirs(target)
  names = [n for n in RUN_FILES if os.path.exists(os.path.join(workdir, n))]
  names += [os.path.basename(p) for _, p in checkpoints(workdir)]
  for name in names:
    os.replace(os.path.join(workdir, name), os.path.join(target, name))
  return target


def prepare_workdir(cfg: config_dict.ConfigDict, workdir: str,
                    overwrite: bool, write: bool = True) -> bool:
  """Creates the workdir or checks that it holds a run of this config.

  With `write=False` (processes other than 0) it only checks. Returns
  whether the run must start afresh (an old run was set aside).

  Raises:
    WorkdirError: if it holds a run of another config, or run files without
      a config.json, and `overwrite` is False.
  """
  if write:
    os.makedirs(workdir, exist_ok=True)
  config_path = os.path.join(workdir, CONFIG_FILE)
  has_run = bool(checkpoints(workdir)) or any(
      os.path.exists(os.path.join(workdir, n)) for n in RUN_FILES)
  problem = None
  if os.path.exists(config_path):
    with open(config_path) as f:
      stored = registry.config_from_json(f.read())
    changed = _differences(trajectory_fields(stored), trajectory_fields(cfg))
    if changed:
      problem = (f"{workdir} holds a run of a different config; fields that "
                 "change the trajectory differ:\n  " + "\n  ".join(changed))
    else:
      free = _differences(_flatten(json.loads(stored.to_json())),
                          _flatten(json.loads(cfg.to_json())))
      if free:
        logging.info("Resuming with changed fields that keep the trajectory:"
                     "\n  %s", "\n  ".join(free))
  elif has_run:
    problem = f"{workdir} holds run files but no {CONFIG_FILE}"
  if problem:
    if not overwrite:
      raise WorkdirError(
          f"{problem}\nPass --overwrite (train(..., overwrite=True)) to move "
          "its files into previous-<time>/ and start afresh, or choose "
          "another --workdir.")
    if write:
      logging.warning("%s\nMoved its files to %s", problem,
                      _move_aside(workdir))
  if write:
    atomic_write(config_path, lambda f: f.write(cfg.to_json(indent=2) + "\n"),
                 mode="w")
  return problem is not None


def _resume(workdir: str, like: vmc.TrainState):
  """The newest readable checkpoint's state, or None."""
  for step, path in reversed(checkpoints(workdir)):
    try:
      state = load_checkpoint(path, like)
    except (OSError, ValueError, KeyError) as e:
      logging.warning("Skipping unreadable checkpoint %s: %s", path, e)
      continue
    if int(state.step) != step:
      logging.warning("Skipping %s: it holds step %d", path, int(state.step))
      continue
    return state
  return None


# ---------------------------------------------------------------------------
# Training.


def _format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes}m{seconds:02d}s"
  return f"{minutes // 60}h{minutes % 60:02d}m"


def _first_non_finite(stats: dict[str, np.ndarray]) -> int | None:
  bad = np.zeros_like(stats["energy"], dtype=bool)
  for name in ("energy", "variance", "grad_norm", "update_norm"):
    bad |= ~np.isfinite(stats[name])
  return int(np.argmax(bad)) if bad.any() else None


def make_evaluate(model, hamiltonian, n_samples: int, chunk_size, mesh=None):
  """params, key -> (mean, standard error, variance) of fresh samples."""
  devices = 1 if mesh is None else mesh.devices.size
  chunk = sampler.chunk_for(
      n_samples, None if chunk_size is None else chunk_size * devices, mesh,
      model=model)

  @jax.jit
  def evaluate(params, key):
    x, _ = sampler.draw(model, params, key, n_samples, chunk, mesh)
    local_energies = hamiltonian.local_energy(model.log_psi, params, x,
                                              chunk_size=chunk_size)
    stats = estimators.energy_stats(local_energies)
    return stats.mean, stats.error, stats.variance

  return evaluate


def train(cfg: config_dict.ConfigDict, workdir: str, *,
          overwrite: bool = False, stop_after: int | None = None,
          mesh: jax.sharding.Mesh | None = None) -> Result:
  """Runs (or resumes) the VMC experiment `cfg` in `workdir`.

  Args:
    cfg: an experiment config (`configs/experiments.py`).
    workdir: where config.json, metrics.jsonl, checkpoints, energy.png and
      result.json go; created if absent.
    overwrite: if the workdir holds a run of a different config, move its
      files into previous-<time>/ and start afresh instead of refusing.
    stop_after: stop (with a checkpoint) once this many steps are done in
      all, before vmc.steps: the run resumes later where it stopped.
    mesh: a batch mesh (`zoo.sharding.batch_mesh`) to shard the samples over;
      None runs on the default device. Only process 0 writes files.

  Returns:
    The final `Result`.

  Raises:
    WorkdirError: the workdir holds a run of another config.
    FloatingPointError: a step gave a non-finite energy (or variance or
      update); the checkpoints keep the last good state.
    ValueError: a field of the config is invalid.
  """
  start = time.perf_counter()
  hamiltonian, model, run, learning_rate = build(cfg, mesh)
  steps, chunk_size = cfg.vmc.steps, cfg.vmc.chunk_size or None
  write = jax.process_index() == 0
  fresh = prepare_workdir(cfg, workdir, overwrite, write)
  logging.info("Model %r: %d parameters", model,
               registry.parameter_count(model))

  exact_value, exact_method = exact_energy(hamiltonian,
                                           cfg.vmc.get("total_sz"))
  if exact_value is not None:
    logging.info("Exact energy (%s): %.10f", exact_method, exact_value)

  key = jax.random.key(cfg.vmc.seed)
  state = None if fresh else _resume(workdir, jax.eval_shape(run.init, key))
  if state is not None:
    state = run.put(state)
  if state is None:
    state = run.init(key)
    logging.info("Starting a new run in %s", workdir)
  else:
    logging.info("Resuming from step %d in %s", int(state.step), workdir)
  done = int(state.step)

  metrics_path = os.path.join(workdir, METRICS_FILE)
  # Cut the metrics back to the checkpoint (and drop a torn last line).
  rows = [] if fresh else [
      r for r in read_metrics(metrics_path) if r["step"] < done]
  if write:
    atomic_write(metrics_path, lambda f: f.write(_metric_lines(rows)), "w")
  wall_offset = rows[-1]["wall_s"] if rows else 0.0
  plot_title = f"{type(hamiltonian).__name__} {hamiltonian.lattice}"

  target = steps if stop_after is None else min(steps, stop_after)
  every_k, checkpoint_every = cfg.log.every_k, cfg.log.checkpoint_every
  first_done, train_start = done, time.perf_counter()
  last_read, rate_since = train_start, None
  while done < target:
    k = min(every_k - done % every_k, target - done)
    new_state, stats = run.run(state, k)
    stats = {name: np.asarray(value)
             for name, value in jax.device_get(stats)._asdict().items()}
    now = time.perf_counter()
    bad = _first_non_finite(stats)
    good = k if bad is None else bad
    chunk_rows = []
    rates = np.broadcast_to(learning_rate(np.arange(done, done + k)), (k,))
    for i in range(good):
      row = {"step": done + i}
      row.update({name: float(stats[name][i]) for name in (
          "energy", "error", "variance", "grad_norm", "update_norm")})
      row["learning_rate"] = float(rates[i])
      if exact_value is not None:
        row["relative_error"] = abs(row["energy"] - exact_value) / abs(
            exact_value)
      row["wall_s"] = wall_offset + (last_read - train_start) + (
          (now - last_read) * (i + 1) / k)
      chunk_rows.append(row)
    if write:
      with open(metrics_path, "a") as f:
        f.write(_metric_lines(chunk_rows))
    rows += chunk_rows
    last_read = now
    if bad is not None:
      if write:
        plot_energy(os.path.join(workdir, PLOT_FILE), rows, exact_value,
                    plot_title)
      saved = checkpoints(workdir)
      last = (f"{saved[-1][1]} (step {saved[-1][0]})" if saved
              else "none yet")
      raise FloatingPointError(
          f"non-finite statistics at step {done + bad}: energy="
          f"{stats['energy'][bad]}, variance={stats['variance'][bad]}, "
          f"update_norm={stats['update_norm'][bad]}. The last good "
          f"checkpoint is {last}; nothing later was saved. Lower "
          "optimizer.learning_rate or raise optimizer.sr.diag_shift, then "
          "rerun to resume from it.")
    state, done = new_state, done + k
    if write and (done % checkpoint_every == 0 or done == target):
      save_checkpoint(workdir, state, cfg.log.keep_checkpoints)
      plot_energy(os.path.join(workdir, PLOT_FILE), rows, exact_value,
                  plot_title)
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
    logging.info("%s  %.2f steps/s  ETA %s", message, rate,
                 _format_seconds((target - done) / rate))

  evaluate = make_evaluate(model, hamiltonian, cfg.vmc.eval_samples,
                           chunk_size, mesh)
  eval_key = jax.random.fold_in(jax.random.key(cfg.vmc.seed), EVAL_STREAM)
  energy, error, variance = map(float, evaluate(state.params, eval_key))
  relative = (None if exact_value is None
              else abs(energy - exact_value) / abs(exact_value))
  result = Result(state=state, energy=energy, error=error, variance=variance,
                  exact=exact_value, exact_method=exact_method,
                  relative_error=relative, steps=done,
                  eval_samples=cfg.vmc.eval_samples)
  record = {k: v for k, v in result._asdict().items() if k != "state"}
  record.update(summary=result.summary(),
                wall_s=time.perf_counter() - start)
  if write:
    atomic_write(os.path.join(workdir, RESULT_FILE),
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
  spec = config_flags.get_config_filename(flags.FLAGS["config"])
  workdir = flags.FLAGS.workdir or os.path.join("workdirs", config_name(spec))
  logging.info("Config %s, workdir %s:\n%s", spec, workdir, cfg)
  result = train(cfg, workdir, overwrite=flags.FLAGS.overwrite,
                 mesh=sharding.batch_mesh())
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
  app.run(run_command)


if __name__ == "__main__":
  main()

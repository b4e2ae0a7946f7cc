"""A run's directory: atomic files, checkpoints, metrics, resuming, refusal.

  config.json                the config of the run (`config_tools.config_from_json`)
  metrics.jsonl              one JSON line per step
  checkpoint_<step>.npz      the newest `keep` TrainStates, keyed by tree path
  energy.png, result.json    written by the launcher through `atomic_write`

Every file is written atomically (a temporary file in the workdir, fsync,
`os.replace`), so a crash during a save leaves the previous version intact.
A checkpoint stores each leaf under its tree path (`.params['arnn_dense/~/
layer_0']['kernel']`); restoring into a tree with other paths, shapes or
dtypes raises an error that names the first mismatch, so a changed model
never restores silently into the wrong leaves.

A workdir belongs to one config: `prepare` refuses another one (fields that
change the trajectory differ) unless told to overwrite, which moves the old
run's files into `previous-<time>/`; nothing a run saved is deleted.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import zipfile
from typing import Any, Sequence

from absl import logging
import jax
import numpy as np

from zoo import build
from zoo import config_tools
from zoo import pretrained
from zoo import transfer
from zoo import trees
from zoo import vmc

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "energy.png"
RESULT_FILE = "result.json"
CHECKPOINT = re.compile(r"checkpoint_(\d+)\.npz\Z")
# Files a run writes; overwriting moves these (and only these) aside.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, PLOT_FILE, RESULT_FILE)


class WorkdirError(ValueError):
  """The workdir holds a run of another config (or files not from a run)."""


# A checkpoint's tree paths, shapes or dtypes are not the state's.
CheckpointMismatch = trees.TreeMismatch


# ---------------------------------------------------------------------------
# Atomic files.


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


# ---------------------------------------------------------------------------
# Checkpoints.


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
  """Writes `state` atomically as checkpoint_<step>.npz, each leaf under its
  tree path; keeps the newest `keep` checkpoints (all if None). Returns the
  path.

  Raises:
    FloatingPointError: if the state holds a NaN or an infinity (nothing is
      written).
  """
  arrays = {path: np.asarray(leaf) for path, leaf in trees.by_path(
      jax.device_get(_host_state(state))).items()}
  for path, leaf in arrays.items():
    if leaf.dtype.kind in "fc" and not np.all(np.isfinite(leaf)):
      raise FloatingPointError(
          f"refusing to save a checkpoint of step {int(state.step)}: "
          f"{path} holds non-finite values")
  step = int(state.step)
  path = checkpoint_path(workdir, step)
  atomic_write(path, lambda f: np.savez(f, **arrays))
  if keep is not None:
    for _, old in checkpoints(workdir)[:-keep]:
      os.unlink(old)
  return path


def load_checkpoint(path: str, like: vmc.TrainState) -> vmc.TrainState:
  """The TrainState in `path`, with the tree of `like` (a state or its
  `jax.eval_shape`).

  Raises:
    CheckpointMismatch: naming the first tree path that the file lacks,
      holds in excess, or holds with another shape or dtype.
  """
  template = jax.eval_shape(_host_state, like)
  with np.load(path) as data:
    stored = {name: data[name] for name in data.files}
  state = trees.from_paths(template, stored, f"checkpoint {path}")
  return state._replace(key=jax.random.wrap_key_data(state.key))


def load_source(spec: str) -> transfer.Source:
  """The parameters `init.from` names: "pretrained:NAME" (`zoo.pretrained`)
  or a run's workdir (`load_params`).

  Raises:
    ValueError: naming `init.from` when there is no such model or run.
  """
  if spec.startswith(pretrained.PREFIX):
    try:
      return pretrained.source(spec[len(pretrained.PREFIX):])
    except ValueError as e:
      raise ValueError(f"init.from={spec!r}: {e}") from None
  try:
    cfg, arrays = load_params(spec)
  except ValueError as e:
    raise ValueError(f"init.from={spec!r}: {e}") from None
  return transfer.Source(cfg, arrays, spec)


def load_params(workdir: str):
  """(config, params) of the run in `workdir`: its config.json and the
  parameters of its newest checkpoint.

  Raises:
    ValueError: naming the workdir when it holds no config or checkpoint.
  """
  config_path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(config_path):
    raise ValueError(f"{workdir} holds no {CONFIG_FILE}: not a run's workdir")
  with open(config_path) as f:
    cfg = config_tools.config_from_json(f.read())
  saved = checkpoints(workdir)
  if not saved:
    raise ValueError(f"{workdir} holds no checkpoint")
  prefix = ".params"
  with np.load(saved[-1][1]) as data:
    params = {name[len(prefix):]: data[name] for name in data.files
              if name.startswith(prefix)}
  return cfg, params


def resume(workdir: str, like: vmc.TrainState) -> vmc.TrainState | None:
  """The newest readable checkpoint's state, or None.

  Unreadable checkpoints (torn, or of another step) are skipped; one of
  another tree raises `CheckpointMismatch`, since no older one would fit
  either: the model or optimizer changed under the same config.
  """
  for step, path in reversed(checkpoints(workdir)):
    try:
      state = load_checkpoint(path, like)
    except CheckpointMismatch:
      raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
      logging.warning("Skipping unreadable checkpoint %s: %s", path, e)
      continue
    if int(state.step) != step:
      logging.warning("Skipping %s: it holds step %d", path, int(state.step))
      continue
    return state
  return None


# ---------------------------------------------------------------------------
# Metrics.


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


def metric_lines(rows: Sequence[dict[str, Any]]) -> str:
  return "".join(json.dumps(row) + "\n" for row in rows)


# ---------------------------------------------------------------------------
# The workdir of one config.


def _flatten(cfg, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in cfg.items():
    if hasattr(value, "items"):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def trajectory_fields(cfg) -> dict[str, Any]:
  """The fields that decide the trajectory: every field but the `log`
  section, `vmc.eval_samples`, and `vmc.steps` under a constant schedule
  (a longer run then continues the same trajectory)."""
  fields = _flatten(json.loads(cfg.to_json()))
  ignored = {"vmc.eval_samples"}
  if fields.get("optimizer.schedule") == "constant":
    ignored.add("vmc.steps")
  # A field at the value its absence means (`zoo.build.FIELD_DEFAULTS`)
  # counts as absent: configs stored before the field existed still match.
  ignored |= {k for k, v in build.FIELD_DEFAULTS.items()
              if fields.get(k) == v}
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


def prepare(cfg, workdir: str, overwrite: bool, write: bool = True) -> bool:
  """Creates the workdir or checks that it holds a run of this config.

  With `write=False` (processes other than 0) it only checks. Returns
  whether the run must start afresh (an old run was set aside).

  Raises:
    WorkdirError: if it holds a run of another config, or run files without
      a config.json, and `overwrite` is False; or if it is a file, or a
      folder that cannot be made or written.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"workdir={workdir!r}: is a file; must be a folder "
                       "(or a path where one can be made)")
  try:
    return _prepare(cfg, workdir, overwrite, write)
  except OSError as e:
    raise WorkdirError(
        f"workdir={workdir!r}: must be a folder this process can make and "
        f"write; {e.strerror or e}"
        + (f" ({e.filename})" if e.filename not in (None, workdir) else "")
    ) from e


def _prepare(cfg, workdir: str, overwrite: bool, write: bool) -> bool:
  if write:
    os.makedirs(workdir, exist_ok=True)
    if not os.access(workdir, os.W_OK | os.X_OK):
      raise PermissionError(13, "Permission denied", workdir)
  config_path = os.path.join(workdir, CONFIG_FILE)
  has_run = bool(checkpoints(workdir)) or any(
      os.path.exists(os.path.join(workdir, n)) for n in RUN_FILES)
  problem = None
  if os.path.exists(config_path):
    with open(config_path) as f:
      stored = config_tools.config_from_json(f.read())
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

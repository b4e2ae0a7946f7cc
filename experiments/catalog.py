r"""The zoo command: list, describe and validate the registered configs.

  python -m experiments.catalog list
  python -m experiments.catalog describe fast_arnn_conv2d_dilated
  python -m experiments.catalog describe fast_arnn_conv1d:L=64,features=32
  python -m experiments.catalog describe \
      --config=configs/arnn_conv2d.py:fast=True,L=8 --config.model.features=32
  python -m experiments.catalog validate [SPEC ...]

`list` prints one row per registered name; `describe` the resolved config and
a per-module parameter table; `validate` builds each config at a tiny size
(`zoo.config_tools.shrink`), draws samples with the fast twin, evaluates them
with the slow twin (`log_psi`, `conditionals`), checks that the log-
probabilities of the fast sampler's cached pass equal the slow full pass,
and exits non-zero naming each failure.

Glossary of shapes: n = samples, N = sites, K = local states.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import time
from typing import Any, NamedTuple, Sequence

from absl import app
from absl import flags
import chex
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

import experiments
from experiments import grow
from experiments import stages
from experiments import workdir as workdir_lib
from zoo import build, checks, config_tools, registry, sampler
from zoo import pretrained as zoo_pretrained

# Smoke runs only need correct numbers, not fast code: XLA's unoptimized
# backend compiles these tiny models about three times faster.
SMOKE_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


# ---------------------------------------------------------------------------
# Smoke runs (`validate` and the tests).


class SmokeRun(NamedTuple):
  """One tiny end-to-end run of a config and its twin (same params)."""

  fast: Any  # the fast twin, which drew the samples
  slow: Any  # the slow twin, which evaluated them
  params: Any
  samples: jax.Array  # [n, N]
  log_prob: jax.Array  # [n], accumulated by the fast sampler's cached pass
  log_psi: jax.Array  # [n], the slow full pass
  conditionals: jax.Array  # [n, N, K], the slow full pass


def with_fast(cfg, fast: bool):
  """A copy of a config that builds the slow or the fast twin."""
  cfg = copy.deepcopy(cfg)
  cfg.model.fast = fast
  return cfg


def smoke_run(cfg, n_samples: int = 8, seed: int = 0) -> SmokeRun:
  """Initializes, samples with the fast twin and evaluates with the slow one.

  One compiled function does it all, so a config costs one compilation.
  """
  fast = build.model(with_fast(cfg, True))
  slow = build.model(with_fast(cfg, False))

  def run(key):
    init_key, sample_key = jax.random.split(key)
    params, _ = fast.init(init_key)
    samples, log_prob = sampler.sample(fast, params, sample_key, n_samples,
                                       return_log_prob=True)
    return (params, samples, log_prob, slow.log_psi(params, samples),
            slow.conditionals(params, samples))

  key = jax.random.key(seed)
  compiled = jax.jit(run).lower(key).compile(SMOKE_COMPILER_OPTIONS)
  return SmokeRun(fast, slow, *compiled(key))


def smoke_problems(run: SmokeRun) -> list[str]:
  """What is wrong with a smoke run, if anything."""
  hilbert = run.fast.hilbert
  n = run.samples.shape[0]
  problems = []
  try:
    chex.assert_shape(run.samples, (n, hilbert.size))
    chex.assert_shape(run.log_prob, (n,))
    chex.assert_shape(run.log_psi, (n,))
    chex.assert_shape(run.conditionals, (n, hilbert.size, hilbert.local_size))
    chex.assert_tree_all_finite((run.log_prob, run.log_psi, run.conditionals))
  except AssertionError as e:
    return [str(e)]
  if not np.all(hilbert.contains(run.samples)):
    problems.append(f"samples hold values outside {hilbert.local_states}")
  if not np.allclose(np.sum(run.conditionals, -1), 1.0, atol=1e-5):
    problems.append("conditionals do not sum to 1 over local states")
  tol = 1e-8 if run.slow.real_dtype == jnp.float64 else 1e-3
  gap = float(np.max(np.abs(
      run.log_prob - run.slow.machine_pow * np.real(run.log_psi))))
  if not gap <= tol:
    problems.append(
        f"fast != slow: the cached log-probability of the samples differs "
        f"from machine_pow * Re log_psi of the full pass by {gap:.2e} "
        f"(tolerance {tol:.0e})")
  return problems


def validate(specs: Sequence[str], n_samples: int = 8,
             out=sys.stdout) -> list[str]:
  """Smoke-runs each spec at a tiny size; returns `name: problem` lines."""
  failures = []
  for spec in specs:
    start = time.perf_counter()
    try:
      problems = smoke_problems(smoke_run(
          config_tools.shrink(registry.get_config(spec)), n_samples))
    except Exception as e:  # pylint: disable=broad-except
      problems = [f"{type(e).__name__}: {e}".splitlines()[0]]
    seconds = time.perf_counter() - start
    status = "FAIL" if problems else "ok"
    print(f"{status:4s}  {spec}  ({seconds:.1f} s)", file=out)
    for problem in problems:
      print(f"      {problem}", file=out)
      failures.append(f"{spec}: {problem}")
  return failures


# ---------------------------------------------------------------------------
# Tables.


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """Columns padded to their widest cell; numbers right-aligned."""
  cells = [list(map(str, header))] + [[_cell(v) for v in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  numeric = [bool(rows) and all(isinstance(row[i], (int, np.integer))
                                or row[i] == "" for row in rows)
             for i in range(len(header))]

  def line(row):
    return "  ".join(c.rjust(w) if r else c.ljust(w)
                     for c, w, r in zip(row, widths, numeric)).rstrip()

  rule = "  ".join("-" * w for w in widths)
  return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _cell(value) -> str:
  if checks.is_int(value):
    return f"{value:,}"
  return str(value)


def _per_layer(values: tuple[tuple[int, ...], ...]) -> str:
  """(3,) per layer -> "3"; ((1, 1), (2, 2)) -> "1x1,2x2"; dense -> "-"."""
  if not values or values[0] == ():
    return "-"
  text = ["x".join(map(str, v)) for v in values]
  return text[0] if len(set(text)) == 1 else ",".join(text)


def _hilbert_text(cfg) -> str:
  h = cfg.hilbert
  kind = f"fock({h.n_max})" if h.kind == "fock" else h.kind
  sector = "" if h.get("total") is None else f" total={h.total:g}"
  return f"{kind} {'x'.join(map(str, cfg.lattice.shape))}{sector}"


LIST_HEADER = ("name", "family", "fast", "hilbert", "layers", "features",
               "kernel", "dilation", "dtype", "params")


def list_row(name: str) -> tuple:
  """One row of `list`: the config of `name` at its default size."""
  cfg = registry.get_config(name)
  model = build.model(cfg)
  spec = model.spec
  return (name, spec.family, "yes" if spec.fast else "no", _hilbert_text(cfg),
          spec.layers, ",".join(map(str, spec.features)),
          _per_layer(spec.kernel_size), _per_layer(spec.kernel_dilation),
          jnp.dtype(spec.param_dtype).name, model.parameter_count())


def list_table(names: Sequence[str]) -> tuple[str, list[str]]:
  """The `list` table and the names that failed to build."""
  rows, failures = [], []
  for name in names:
    try:
      rows.append(list_row(name))
    except Exception as e:  # pylint: disable=broad-except
      failures.append(f"{name}: {type(e).__name__}: {e}")
      rows.append((name,) + ("?",) * (len(LIST_HEADER) - 2) + ("error",))
  rows.sort(key=lambda r: (r[1], r[0]))
  return format_table(LIST_HEADER, rows), failures


def _flatten(cfg, prefix="") -> list[tuple[str, Any]]:
  items = []
  for key, value in cfg.items():
    if hasattr(value, "items"):
      items += _flatten(value, f"{prefix}{key}.")
    else:
      items.append((f"{prefix}{key}", value))
  return items


def _bytes(n: int) -> str:
  for unit in ("B", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{n:,} B" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024


def describe(cfg, title: str = "") -> str:
  """The resolved config, the model and its per-module parameter table."""
  model = build.model(cfg)
  shapes = model.parameter_shapes()
  rows, total, total_bytes = [], 0, 0
  for module in sorted(shapes):
    for param in sorted(shapes[module]):
      leaf = shapes[module][param]
      count = int(np.prod(leaf.shape))
      size = count * leaf.dtype.itemsize
      rows.append((module, param, str(tuple(leaf.shape)), leaf.dtype.name,
                   count, size))
      total, total_bytes = total + count, total_bytes + size
  rows.append(("total", "", "", "", total, total_bytes))
  spec = model.spec
  lines = [title] if title else []
  lines += ["config:"]
  lines += [f"  {key} = {value!r}" for key, value in _flatten(cfg)]
  lines += [
      "", f"model: {model!r}",
      f"  features per layer: {spec.features}",
      f"  kernel per layer:   {_per_layer(spec.kernel_size)}",
      f"  dilation per layer: {_per_layer(spec.kernel_dilation)}",
      "", "parameters (masked kernel entries are stored as zeros):",
      format_table(("module", "param", "shape", "dtype", "count", "bytes"),
                   rows),
      f"total: {total:,} parameters, {_bytes(total_bytes)}",
  ]
  return "\n".join(lines)


# ---------------------------------------------------------------------------
# The command.

USAGE = """usage: python -m experiments.catalog COMMAND
  list                   one row per registered config
  describe SPEC          a config and its parameters (or --config=SPEC
                         with --config.field=value overrides)
  validate [SPEC ...]    build, evaluate and sample every config (or the
                         given ones) at a tiny size
  pretrained             one row per trained model of the zoo
  save_pretrained WORKDIR NAME
                         add a finished run to the trained models
SPEC: a registered name, name:arg, path.py or path.py:arg."""

PRETRAINED_HEADER = ("name", "family", "system", "lattice", "params",
                     "energy", "error", "relative error", "steps", "wall")


def pretrained_table() -> str:
  """`pretrained`: each trained model, its system and what it reached."""
  rows = []
  for name in zoo_pretrained.names():
    trained = zoo_pretrained.load(name)
    cfg, record = trained.config, trained.record
    relative = record.get("relative_error")
    rows.append((
        name, cfg.model.family, cfg.hamiltonian.kind,
        "x".join(map(str, cfg.lattice.shape))
        + ("" if cfg.lattice.pbc else " open"),
        sum(int(np.prod(a.shape)) for a in trained.arrays.values()),
        f"{record['energy']:.6f}", f"{record['error']:.1e}",
        "-" if relative is None else f"{relative:.2e}", record["steps"],
        _format_wall(record.get("wall_s"))))
  return format_table(PRETRAINED_HEADER, rows)


def _format_wall(seconds) -> str:
  if seconds is None:
    return "-"
  minutes, seconds = divmod(int(round(seconds)), 60)
  return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def save_pretrained(workdir: str, name: str, directory: str | None = None
                    ) -> str:
  """Writes a finished run (config.json, result.json, the newest
  checkpoint's parameters) as the trained model `name`; returns the json
  path. Refuses a name that is taken (nothing is overwritten).

  The workdir of `experiments.stages` (or `experiments.grow`) gives its last
  stage's model and energy, with the steps and wall time of all its stages
  and each stage's overrides (`stages`)."""
  directory = directory or os.path.dirname(zoo_pretrained.__file__)
  if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
    raise ValueError(f"name={name!r}: must be lowercase letters, digits "
                     "and '_', starting with a letter")
  paths = [os.path.join(directory, f"{name}.{ext}") for ext in ("json", "npz")]
  taken = [p for p in paths if os.path.exists(p)]
  if taken:
    raise ValueError(f"name={name!r}: {taken[0]} exists; pick another name")
  stage_records = _stage_records(workdir)
  if stage_records:
    workdir = stage_records[-1]["workdir"]
  result_path = os.path.join(workdir, workdir_lib.RESULT_FILE)
  if not os.path.exists(result_path):
    raise ValueError(f"{workdir} holds no {workdir_lib.RESULT_FILE}: the "
                     "run has not finished")
  with open(result_path) as f:
    record = json.load(f)
  cfg, arrays = workdir_lib.load_params(workdir)
  record.pop("summary", None)
  if stage_records:
    record["steps"] = sum(r["steps"] for r in stage_records)
    record["wall_s"] = sum(r["wall_s"] for r in stage_records)
    record["stages"] = [dict(stage=r["stage"], overrides=r["overrides"],
                             steps=r["steps"], wall_s=r["wall_s"],
                             relative_error=r.get("relative_error"))
                        for r in stage_records]
  record["machine"] = _machine()
  record["config"] = json.loads(cfg.to_json())
  workdir_lib.atomic_write(paths[1], lambda f: np.savez_compressed(f, **arrays))
  workdir_lib.atomic_write(
      paths[0], lambda f: f.write(json.dumps(record, indent=1) + "\n"), "w")
  return paths[0]


def _stage_records(workdir: str) -> list[dict] | None:
  """The stages' records of a stages (or grow) workdir, or None."""
  for record in (stages.RECORD, grow.RECORD):
    path = os.path.join(workdir, record)
    if os.path.exists(path):
      with open(path) as f:
        return json.load(f)
  return None


def _machine() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      model = next(line.split(":", 1)[1].strip() for line in f
                   if line.startswith("model name"))
  except (OSError, StopIteration):
    model = "unknown CPU"
  cores = len(os.sched_getaffinity(0))
  return f"{model}, {cores} core{'' if cores == 1 else 's'}"


def run(argv: Sequence[str]) -> int:
  """The command after absl has parsed the flags; returns the exit status."""
  if len(argv) < 2 or argv[1] not in ("list", "describe", "validate",
                                      "pretrained", "save_pretrained"):
    raise app.UsageError(USAGE)
  command, args = argv[1], list(argv[2:])
  config = flags.FLAGS["config"].value
  if config is not None and command != "describe":
    raise app.UsageError(f"--config applies to describe only\n{USAGE}")
  if command == "list":
    if args:
      raise app.UsageError(f"list takes no arguments, got {args}\n{USAGE}")
    table, failures = list_table(registry.names())
    print(table)
    for failure in failures:
      print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0
  if command == "pretrained":
    if args:
      raise app.UsageError(f"pretrained takes no arguments\n{USAGE}")
    print(pretrained_table())
    return 0
  if command == "save_pretrained":
    if len(args) != 2:
      raise app.UsageError(f"save_pretrained takes WORKDIR NAME\n{USAGE}")
    try:
      print(save_pretrained(*args))
    except ValueError as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
    return 0
  if command == "describe":
    if bool(args) == (config is not None) or len(args) > 1:
      raise app.UsageError(f"describe takes one SPEC or --config\n{USAGE}")
    try:
      if args:
        print(describe(registry.get_config(args[0]), title=args[0]))
      else:
        print(describe(config, title=flags_spec()))
    except ValueError as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
    return 0
  failures = validate(args or registry.names())
  if failures:
    print(f"\n{len(failures)} failure(s):", file=sys.stderr)
    for failure in failures:
      print(f"  {failure}", file=sys.stderr)
    return 1
  return 0


def flags_spec() -> str:
  """The --config spec and its overrides, as given."""
  flag = flags.FLAGS["config"]
  overrides = config_flags.get_override_values(flag)
  return " ".join([config_flags.get_config_filename(flag)] +
                  [f"{k}={v!r}" for k, v in overrides.items()])


def main():
  """The entry point of `python -m experiments.catalog` and the console script.

  The flag is defined here, not at import, so that tests and other launchers
  may import this module next to their own `--config`.
  """
  experiments.define_config_flag("config")
  experiments.run(run)


if __name__ == "__main__":
  main()

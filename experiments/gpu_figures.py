r"""Every sampler and VMC-step figure of the benchmarks, and two trainings,
in one command of at most 10 minutes on one GPU.

  python -m experiments.gpu_figures --out=$OUT          # a GPU machine
  python -m experiments.gpu_figures --scale=tiny --out=/tmp/gpu_figures

The parts, each in a child process of its own (a crash, a hang or a
library's error ends that part only; the flags of the benchmark modules do
not meet) with a budget of its own in seconds, compilation included:

  netket_sampling   115  `bench_vs_netket` sampling: the recurrent cases,
                         then the masked ones (fast and slow twins), NetKet
                         driving our sampler, the compiled memory
  netket_vmc        100  `bench_vs_netket` VMC steps: the GRU's SR step,
                         then plain and SR steps of the masked models
  sampler_families   75  `bench_sampler`: masked (slow and fast, the S^z = 0
                         sector), gru, transformer, gated
  steps              95  `bench_step`: registered experiments' whole steps
                         (sample counts, float32, complex against real),
                         each timed as soon as it is compiled
  stages             55  `profile_step`: a step's stages, with and without
                         SR, and a step's compiled memory
  train_6x6          70  `heisenberg_square_6x6` trained (its registered
                         schedule) until the part's wall-clock budget, less
                         25 s for the final evaluation, is spent
  train_10x10        65  the same for `heisenberg_square_10x10`

On a GPU compilation dominates (1-17 s a case on an H200): the budgets
were set from such a run, and each part takes its cases in the order of
their importance, so that what a budget cuts is the end of a list.
A part that runs out of its budget is stopped: the cases it finished are
kept, the rest recorded as skipped; a case that fails (NetKet's side,
say) is recorded with its one-line reason and, where ours can run alone,
retried without NetKet. `--budget_s` bounds the whole run; `--budgets`
sets parts' budgets (`steps=120`) and `--only` keeps the named cases whose
name contains one of its texts (`--only=rnn,j1j2`), for a second run that
takes what a first one cut.

Writes, under --out: figures.json (the machine, every part's status,
seconds and rows), figures.md (the same as tables), parts/PART.json (as
each part goes) and logs/PART.log (a part's output).

`--scale=tiny` runs every part at tiny sizes and a few steps (compilation
dominates: a few minutes on a 2-core CPU; `--parts` picks parts);
`--scale=full` refuses a machine whose JAX sees no GPU, unless --allow_cpu.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

import experiments

FLAGS = flags.FLAGS

# Seconds per part at full scale (sum 575: ten minutes with the start-up).
BUDGETS = {
    "netket_sampling": 115,
    "netket_vmc": 100,
    "sampler_families": 75,
    "steps": 95,
    "stages": 55,
    "train_6x6": 70,
    "train_10x10": 65,
}
TINY_BUDGET_S = 120  # a tiny part that takes longer has hung
EVAL_RESERVE_S = 25  # of a training part's budget, for its final evaluation

flags.DEFINE_string("out", "gpu_figures", "Folder of the figures.")
flags.DEFINE_enum("scale", "full", ["full", "tiny"], "full: the benchmarks' "
                  "sizes; tiny: a smoke run of seconds (CPU).")
flags.DEFINE_list("parts", list(BUDGETS), "Parts to run, in this order.")
flags.DEFINE_integer("budget_s", 595, "Seconds for everything; a part gets "
                     "its budget or what is left, whichever is less.")
flags.DEFINE_bool("allow_cpu", False, "Run --scale=full without a GPU.")
flags.DEFINE_list("budgets", [], "Budgets in seconds instead of the parts' "
                  "own, as PART=SECONDS (e.g. steps=120).")
flags.DEFINE_list("only", [], "Keep only the cases whose name contains "
                  "one of these texts, in the parts that name their cases "
                  "(netket_sampling, netket_vmc, steps, stages).")
flags.DEFINE_string("part", None, "(internal) Run this part here.")
flags.DEFINE_float("deadline", None, "(internal) The part's end, Unix time.")


def tiny() -> bool:
  return FLAGS.scale == "tiny"


def one_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def median(times) -> float:
  return float(statistics.median(times))


# ----------------------------------------------------------------------------
# A part, in its child process: rows written as they come.


class Part:
  """The rows of a running part, rewritten to parts/NAME.json after each."""

  def __init__(self, name: str):
    import jax  # pylint: disable=import-outside-toplevel

    self.path = os.path.join(FLAGS.out, "parts", f"{name}.json")
    self.record = dict(part=name, devices=[str(d) for d in jax.devices()],
                       platform=jax.devices()[0].platform, rows=[],
                       notes=[])
    self.write()

  def time_left(self) -> float:
    return FLAGS.deadline - time.time()

  def add(self, **row):
    self.record["rows"].append(row)
    self.write()

  def note(self, text: str):
    self.record["notes"].append(text)
    self.write()

  def cases(self, cases, reserve: float = 3.0):
    """Yields the cases while time is left; records the rest as skipped."""
    cases = list(cases)
    for i, case in enumerate(cases):
      if self.time_left() < reserve:
        self.note(f"out of time: skipped {', '.join(map(str, cases[i:]))}")
        return
      yield case

  def write(self):
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    with open(self.path + ".tmp", "w") as f:
      json.dump(self.record, f, indent=1, default=str)
    os.replace(self.path + ".tmp", self.path)


def chosen(cases, name=lambda case: case):
  """The cases whose name contains one of --only (all without it)."""
  if not FLAGS.only:
    return list(cases)
  return [c for c in cases if any(text in name(c) for text in FLAGS.only)]


def set_flags(**values):
  for name, value in values.items():
    setattr(FLAGS, name, value)


def netket_sampling(part: Part):
  from experiments import bench_vs_netket as bench  # pylint: disable=import-outside-toplevel

  nk = bench.configure_devices(1)
  if nk is None:
    part.note("NetKet is not importable: ours only")
  if tiny():
    set_flags(layers=1, features=2, batch=16, rnn_layers=1, rnn_features=2,
              rounds=1, memory_samples=64)
    cases = [("1d_64", ["fast"], False), ("rnn_1d_64", ["fast"], False)]
  else:
    set_flags(rounds=5)
    masked = [c for c in bench.SAMPLING_CASES
              if c not in bench.RNN_SAMPLING_CASES]
    # The recurrent cases first: their figures are furthest from NetKet's.
    cases = ([(c, ["fast"], False) for c in bench.RNN_SAMPLING_CASES]
             + [(c, ["fast", "slow"], c in ("1d_256", "2d_10")) for c in masked])
  for name, models, drives in part.cases(chosen(cases, lambda c: c[0])):
    set_flags(models=models, netket_drives_zoo=drives and nk is not None)
    try:
      rows = bench.run_sampling_case(nk, name, None)
    except Exception as e:  # pylint: disable=broad-except
      if nk is None:
        part.add(case=name, error=one_line(e))
        continue
      error = one_line(e)
      set_flags(netket_drives_zoo=False)
      try:
        rows = bench.run_sampling_case(None, name, None)
      except Exception as e2:  # pylint: disable=broad-except
        part.add(case=name, error=one_line(e2), netket_error=error)
        continue
      for row in rows:
        row["netket_error"] = f"with NetKet: {error}; ours alone ran"
    for row in rows:
      flat = dict(case=row["label"], twin=row["twin"], sites=row["sites"],
                  ours_per_s=row["ours_per_s"],
                  netket_per_s=row.get("netket_per_s"),
                  ours_over_netket=row.get("ratio"),
                  netket_driving_ours_per_s=row.get("nkzoo_per_s"),
                  ours_compile_s=row["ours"]["compile_s"],
                  netket_compile_s=(row["netket"] or {}).get("compile_s"),
                  ours_times_s=row["ours"]["times_s"])
      if row.get("netket_error"):
        flat["netket_error"] = row["netket_error"]
      part.add(**flat)
  for _ in part.cases(chosen(["memory"])):
    case = "1d_64" if tiny() else "2d_16"
    set_flags(memory_case=case)
    try:
      memory = bench.memory_report(nk, None)
    except Exception as e:  # pylint: disable=broad-except
      part.add(case=f"memory {case}", error=one_line(e))
      continue
    part.add(case=f"memory, {FLAGS.memory_samples} samples, "
             f"{bench.case_label(case)}",
             ours_mib=(memory["ours"] or {}).get("total"),
             netket_mib=(memory.get("netket") or {}).get("total"))


def netket_vmc(part: Part):
  from experiments import bench_vs_netket as bench  # pylint: disable=import-outside-toplevel

  nk = bench.configure_devices(1)
  if nk is None:
    part.note("NetKet is not importable: ours only")
  if tiny():
    set_flags(layers=1, features=2, vmc_samples=16, rounds=1)
    cases = ["vmc_tfim_1d_64"]
  else:
    set_flags(rounds=5)
    # The GRU's SR step first: its figure is furthest from its target.
    cases = sorted(bench.VMC_CASES, key=lambda c: "rnn" not in c)
  for name in part.cases(chosen(cases)):
    error = None
    try:
      row = bench.run_vmc_case(nk, name, None)
    except Exception as e:  # pylint: disable=broad-except
      error = one_line(e)
      try:
        row = bench.run_vmc_case(None, name, None) if nk is not None else None
      except Exception as e2:  # pylint: disable=broad-except
        error, row = f"{one_line(e2)} (with NetKet: {error})", None
      if row is None:
        part.add(case=name, error=error)
        continue
      error = f"with NetKet: {error}; ours alone ran"
    flat = dict(case=row["label"], ours_s=row["ours"]["median_s"],
                netket_s=(row.get("netket") or {}).get("median_s"),
                netket_over_ours=row.get("ratio"),
                ours_energy_per_site=row["ours_energy"],
                netket_energy_per_site=row.get("netket_energy"),
                ours_compile_s=row["ours"]["compile_s"],
                netket_compile_s=(row.get("netket") or {}).get("compile_s"),
                ours_times_s=row["ours"]["times_s"])
    if error:
      flat["netket_error"] = error
    part.add(**flat)


# The families' table of docs/benchmarks.md, one flag set per family.
FAMILY_ROWS = {
    "masked": dict(families=["conv1d", "conv2d"], layers=3, features=16,
                   models=["slow", "fast"], total_sz=0.0),
    "gru": dict(families=["gru"], layers=2, features=32, models=["fast"]),
    "transformer": dict(families=["transformer"], layers=2, features=32,
                        heads=4, models=["fast"], repeats=3,
                        sizes_1d=(64, 256)),
    "gated": dict(families=["gated_conv1d", "gated_conv2d"], layers=8,
                  features=16, kernel_1d=2,
                  dilation_1d=["1", "2", "4", "8", "1", "2", "4", "8"],
                  kernel_2d=["2", "3"], models=["fast"]),
}


def sampler_families(part: Part):
  from experiments import bench_sampler as bench  # pylint: disable=import-outside-toplevel
  from zoo import sharding  # pylint: disable=import-outside-toplevel

  mesh = sharding.batch_mesh()
  for family in part.cases(FAMILY_ROWS):
    fields = dict(FAMILY_ROWS[family])
    sizes = ([("1d", n) for n in fields.pop("sizes_1d", (64, 256, 1024))]
             + [("2d", n) for n in (6, 10, 16)])
    if tiny():
      fields.update(layers=min(fields["layers"], 2), features=2, batch=8,
                    repeats=1, heads=1, dilation_1d=["1"])
      sizes = [("1d", 4), ("2d", 2)]
    set_flags(**{"batch": 1024, "repeats": 5, "total_sz": None,
                 "heads": 2, "kernel_1d": 3, "dilation_1d": ["1"],
                 "kernel_2d": ["3", "5"], **fields})
    sector = FLAGS.total_sz is not None
    for dim, size in part.cases(sizes):
      try:
        case = bench.measure(dim, size, mesh, sector)
      except Exception as e:  # pylint: disable=broad-except
        part.add(family=family, case=f"{dim} {size}", error=one_line(e))
        continue
      rates = case["rates"]
      part.add(family=family, case=case["name"], sites=case["sites"],
               slow_per_s=rates.get("slow"), fast_per_s=rates.get("fast"),
               sector_per_s=rates.get("sector"), fast_mib=case["fast_mib"],
               us_per_sample_site=(1e6 / rates["fast"] / case["sites"]
                                   if "fast" in rates else None))


def steps(part: Part):
  from experiments import bench_step as bench  # pylint: disable=import-outside-toplevel
  from zoo import build  # pylint: disable=import-outside-toplevel

  if tiny():
    case = "heisenberg_square_6x6:tiny=True"
    cases, rounds = [case, f"{case}|vmc.n_samples=16"], 1
  else:
    # The table of issue 22: sample counts, float32, complex against real.
    rounds = 5
    cases = ["heisenberg_square_6x6",
             "heisenberg_square_6x6|vmc.n_samples=256",
             "heisenberg_square_6x6|model.param_dtype=float32",
             "j1j2_square_4x4",
             "j1j2_square_fast_dense",
             "j1j2_square_fast_dense|model.param_dtype=float64",
             "heisenberg_square_fast_dense",
             "heisenberg_square_fast_dense|model.param_dtype=complex128"]
  # Each case compiled and timed before the next is built, so that a part
  # stopped at its budget keeps the cases it reached.
  for case in part.cases(chosen(cases)):
    start = time.perf_counter()
    try:
      run = build.experiment(bench.config(case))
      ready = {case: (run, bench.first_step(run))}
    except Exception as e:  # pylint: disable=broad-except
      part.add(case=case, error=one_line(e))
      continue
    compile_s = time.perf_counter() - start
    kept = []  # rounds while time is left (at least one)
    while len(kept) < rounds and (
        not kept or part.time_left() > 3 + 2 * max(kept)):
      kept += bench.time_rounds(ready, 1)[case]
    part.add(case=case, parameters=run.model.parameter_count(),
             step_s=median(kept), min_s=min(kept), max_s=max(kept),
             rounds=len(kept), compile_s=compile_s)


# profile_step's cases: (label, flags).
STAGE_CASES = [
    ("tfim_1d_64", dict(case="tfim_1d_64")),
    ("tfim_2d_8", dict(case="tfim_2d_8")),
    ("heisenberg_2d_10", dict(case="heisenberg_2d_10")),
    ("tfim_1d_20_dense --sr", dict(case="tfim_1d_20_dense", layers=2,
                                   dtype="float64", sr=True)),
    ("tfim_1d_64 --sr", dict(case="tfim_1d_64", sr=True)),
    ("tfim_2d_8 --sr", dict(case="tfim_2d_8", sr=True)),
    ("--config=heisenberg_square_6x6 --sr",
     dict(config="heisenberg_square_6x6", sr=True)),
]


def stages(part: Part):
  from experiments import bench_step  # pylint: disable=import-outside-toplevel
  from experiments import profile_step as profile  # pylint: disable=import-outside-toplevel
  import zoo.build  # pylint: disable=import-outside-toplevel

  cases = STAGE_CASES
  if tiny():
    cases = [("tfim_1d_64", dict(case="tfim_1d_64", layers=1, features=2)),
             ("--config=heisenberg_square_6x6:tiny=True --sr",
              dict(config="heisenberg_square_6x6:tiny=True", sr=True))]
  samples, rounds = (8, 1) if tiny() else (1024, 5)
  for label, fields in part.cases(chosen(cases, lambda c: c[0])):
    set_flags(**{"layers": 3, "features": 16, "dtype": "float32",
                 "sr": False, **fields})
    try:
      if "config" in fields:
        cfg = bench_step.config(fields["config"])
        model, ham = zoo.build.model(cfg), zoo.build.hamiltonian(cfg)
      else:
        model, ham = profile.build(profile.CASES[fields["case"]])
      times = profile.time_calls(
          profile.stages(model, ham, samples, FLAGS.sr), rounds)
    except Exception as e:  # pylint: disable=broad-except
      part.add(case=label, error=one_line(e))
      continue
    part.add(case=label, samples=samples,
             **{f"{name}_s": median(kept) for name, kept in times.items()})
  sizes = [64] if tiny() else [1024, 4096, 16384]
  memory_case = "tfim_1d_64" if tiny() else "heisenberg_2d_10"
  for chunk in part.cases(chosen([None] if tiny() else [None, 32],
                                 lambda chunk: f"memory, chunk {chunk}")):
    set_flags(**{"layers": 1 if tiny() else 3, "features": 2 if tiny() else 16,
                 "dtype": "float32", "chunk": chunk})
    for n in part.cases(sizes):
      try:
        model, ham = profile.build(profile.CASES[memory_case])
        memory = profile.step_memory(model, ham, n, False)
      except Exception as e:  # pylint: disable=broad-except
        part.add(case=f"memory {memory_case}, {n}", error=one_line(e))
        continue
      part.add(case=f"memory {memory_case}, {n} samples, chunk {chunk}",
               step_mib=memory["total"], temp_mib=memory["temp"])


def train(part: Part, name: str):
  """Trains `name` (its registered schedule) until the part's time, less
  the evaluation's reserve, is spent, or its steps are done; evaluates."""
  import jax  # pylint: disable=import-outside-toplevel

  from zoo import build, physics, registry  # pylint: disable=import-outside-toplevel

  spec = f"{name}:tiny=True" if tiny() else name
  cfg = registry.get_config(spec)
  start = time.perf_counter()
  run = build.experiment(cfg)
  known = physics.exact_or_reference(run.hamiltonian, run.model.hilbert.total)
  key = jax.random.key(run.seed)
  state = run.vmc.init(key)
  # One jitted step at a time: the first compiles, the others are timed,
  # and the budget is checked between steps.
  reserve = 0 if tiny() else EVAL_RESERVE_S
  done, first_s, next_s, step_times, curve = 0, None, 0.0, [], []
  while done < run.steps and part.time_left() - reserve > 1.2 * next_s:
    t = time.perf_counter()
    state, stats = run.vmc.step(state)
    energy = float(stats.energy)
    seconds = time.perf_counter() - t
    if first_s is None:
      first_s = seconds  # compilation included
    else:
      step_times.append(seconds)
      next_s = seconds
    done += 1
    curve.append(dict(step=done, energy=energy,
                      wall_s=time.perf_counter() - start))
    if done % 10 == 0 or done == run.steps:
      part.record["curve"] = curve
      part.write()
  train_s = time.perf_counter() - start
  t = time.perf_counter()
  energy, error, variance = map(float, jax.device_get(
      run.evaluate(state.params, jax.random.fold_in(key, 1))))
  eval_s = time.perf_counter() - t
  row = dict(experiment=spec, parameters=run.model.parameter_count(),
             samples=cfg.vmc.n_samples, steps=done,
             schedule_steps=run.steps, train_s=train_s,
             first_step_s=first_s,
             step_s=median(step_times) if step_times else None,
             energy=energy, error=error, variance=variance,
             eval_samples=cfg.vmc.eval_samples, eval_s=eval_s)
  if known:
    row.update(reference=known[0], reference_method=known[1],
               relative_error=abs(energy - known[0]) / abs(known[0]))
  part.add(**row)


PARTS = {
    "netket_sampling": netket_sampling,
    "netket_vmc": netket_vmc,
    "sampler_families": sampler_families,
    "steps": steps,
    "stages": stages,
    "train_6x6": lambda part: train(part, "heisenberg_square_6x6"),
    "train_10x10": lambda part: train(part, "heisenberg_square_10x10"),
}


def run_part(name: str):
  part = Part(name)
  PARTS[name](part)
  part.record["done"] = True
  part.write()


# ----------------------------------------------------------------------------
# The parent: no JAX here (a GPU client would hold the device's memory).


def machine() -> dict:
  def command(*args):
    try:
      result = subprocess.run(args, capture_output=True, text=True,
                              timeout=30)
      return result.stdout.strip() or result.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
      return one_line(e)

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return dict(
      date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
      host=platform.node(), python=platform.python_version(),
      cores=os.cpu_count(),
      commit=command("git", "-C", root, "rev-parse", "--short", "HEAD"),
      gpu=command("nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                  "--format=csv,noheader"),
      jax=command(sys.executable, "-c", "import jax, jaxlib; print(jax."
                  "__version__, jaxlib.__version__, jax.devices())"))


def launch(name: str, timeout: float) -> dict:
  """Runs one part in a child process for at most `timeout` seconds."""
  os.makedirs(os.path.join(FLAGS.out, "logs"), exist_ok=True)
  path = os.path.join(FLAGS.out, "parts", f"{name}.json")
  if os.path.exists(path):
    os.remove(path)
  log = os.path.join(FLAGS.out, "logs", f"{name}.log")
  start = time.time()
  argv = [sys.executable, "-m", "experiments.gpu_figures", f"--part={name}",
          f"--scale={FLAGS.scale}", f"--out={FLAGS.out}",
          f"--deadline={start + timeout}", f"--only={','.join(FLAGS.only)}"]
  with open(log, "w") as f:
    try:
      rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT,
                          timeout=timeout).returncode
      reason = None
    except subprocess.TimeoutExpired:
      rc, reason = None, f"stopped at its budget of {timeout:.0f} s"
  seconds = time.time() - start
  record = dict(part=name, rows=[], notes=[])
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  if rc is None:
    status = "timed out"
  elif rc == 0 and record.get("done"):
    status = "ok"
  else:
    status = "failed"
    with open(log) as f:
      lines = [line.strip() for line in f if line.strip()]
    reason = lines[-1][:300] if lines else f"exit status {rc}"
  record.update(status=status, seconds=seconds, budget_s=timeout)
  if reason:
    record["reason"] = reason
  return record


def cell(value) -> str:
  if value is None:
    return "-"
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value).replace("|", "\\|")


def markdown(results: dict) -> str:
  m = results["machine"]
  lines = ["# GPU figures", "",
           f"{m['date']}, {m['host']}; GPU: {m['gpu']}; jax: {m['jax']}; "
           f"commit {m['commit']}; scale {results['scale']}; "
           f"{results['seconds']:.0f} s in all.", "",
           "| part | status | seconds | budget |", "|---|---|---:|---:|"]
  for p in results["parts"]:
    status = p["status"] + (f": {p['reason']}" if p.get("reason") else "")
    lines.append(f"| {p['part']} | {cell(status)} | {p['seconds']:.1f} | "
                 f"{p['budget_s']:.0f} |")
  for p in results["parts"]:
    lines += ["", f"## {p['part']}", "",
              f"{p['status']}, {p['seconds']:.1f} s; devices: "
              f"{', '.join(p.get('devices', [])) or '-'}", ""]
    lines += [f"- {note}" for note in p.get("notes", [])]
    rows = p.get("rows", [])
    columns = []
    for row in rows:
      columns += [c for c, v in row.items()
                  if c not in columns and not isinstance(v, list)]
    if rows:
      lines += ["", "| " + " | ".join(columns) + " |",
                "|" + "---|" * len(columns)]
      lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |"
                for row in rows]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if FLAGS.part:
    run_part(FLAGS.part)
    return
  unknown = [p for p in FLAGS.parts if p not in BUDGETS]
  if unknown:
    raise app.UsageError(
        f"--parts: unknown {unknown}; known: {list(BUDGETS)}")
  budgets = dict(BUDGETS)
  for item in FLAGS.budgets:
    name, _, text = item.partition("=")
    try:
      seconds = float(text)
    except ValueError:
      seconds = float("nan")
    if name not in BUDGETS or not seconds > 0:  # nan too
      raise app.UsageError(
          f"--budgets: {item!r} must be PART=SECONDS with a part of "
          f"{list(BUDGETS)} and seconds > 0")
    budgets[name] = seconds
  start = time.time()
  os.makedirs(FLAGS.out, exist_ok=True)
  info = machine()
  print(f"# {info['date']}: GPU {info['gpu']!r}; jax {info['jax']}",
        flush=True)
  if FLAGS.scale == "full" and "cuda" not in info["jax"].lower() and (
      "gpu" not in info["jax"].lower()) and not FLAGS.allow_cpu:
    experiments.fail("JAX sees no GPU here (" + info["jax"] + "); install "
                     "a CUDA build (docs/benchmarks.md, GPU figures), or "
                     "pass --allow_cpu or --scale=tiny")
  results = dict(machine=info, scale=FLAGS.scale, parts=[])
  for name in FLAGS.parts:
    left = FLAGS.budget_s - (time.time() - start)
    budget = min(TINY_BUDGET_S if tiny() else budgets[name], left)
    if budget < 5:
      record = dict(part=name, status="skipped", seconds=0.0, budget_s=0.0,
                    reason="no time left", rows=[], notes=[])
    else:
      record = launch(name, budget)
    results["parts"].append(record)
    print(f"{name:<18}{record['status']:<10}{record['seconds']:7.1f} s  "
          f"{len(record['rows'])} rows"
          + (f"  ({record['reason']})" if record.get("reason") else ""),
          flush=True)
    results["seconds"] = time.time() - start
    with open(os.path.join(FLAGS.out, "figures.json"), "w") as f:
      json.dump(results, f, indent=1, default=str)
    with open(os.path.join(FLAGS.out, "figures.md"), "w") as f:
      f.write(markdown(results))
  print(f"# {results['seconds']:.0f} s in all; "
        f"{os.path.join(FLAGS.out, 'figures.md')} and figures.json", flush=True)


if __name__ == "__main__":
  experiments.run(main)

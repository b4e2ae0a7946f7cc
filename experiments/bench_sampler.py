r"""Sampler benchmark: samples/s of slow vs fast ARNNs, and their memory.

Reference architecture: 3 layers, 16 features, kernel 3 (1D) or (3, 5) (2D),
batch 1024, float32. Each case's models are compiled once (warm-up), then
timed in `--repeats` alternating rounds with fresh keys; the median is
reported. Memory is XLA's
own account of the compiled sampler (arguments + outputs + temporaries).

  python -m experiments.bench_sampler
  python -m experiments.bench_sampler --sizes_1d=64,256,1024 --sizes_2d=10 \
      --models=fast --repeats=7
  python -m experiments.bench_sampler --cpu_devices=auto   # batch split over cores
  python -m experiments.bench_sampler --models=fast --total_sz=0  # + the sector
  python -m experiments.bench_sampler --families=gru --layers=2 --features=32

`--families` names what is timed, by the family table's names: each case
takes the first family that runs on its lattice (a family that needs a 2D
lattice only on squares, others anywhere, so `conv1d,conv2d`, the default
and the reference above, times conv1d on chains and conv2d on squares).
The other flags reach the families that take them: the kernel flags those
with kernels, `--heads` those with heads; a family with a `pbc` field is
built periodic.
"""

import statistics
import time

from absl import flags
import jax
import numpy as np

import experiments
from experiments import runtime
import zoo
import zoo.models
from zoo import sampler, sharding

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes_1d", ["16", "64", "256", "1024"], "Chain lengths N.")
flags.DEFINE_list("sizes_2d", ["4", "6", "10", "16"], "Square lattice sides L.")
flags.DEFINE_list("models", ["slow", "fast"], "Which twins to time.")
flags.DEFINE_list("families", ["conv1d", "conv2d"],
                  "Families to time, by name (see the module docstring).")
flags.DEFINE_integer("heads", 2, "Attention heads (transformer).")
flags.DEFINE_integer("batch", 1024, "Samples per call.")
flags.DEFINE_integer("layers", 3, "Masked layers.")
flags.DEFINE_integer("features", 16, "Hidden features.")
flags.DEFINE_integer("kernel_1d", 3, "1D kernel size.")
flags.DEFINE_list("kernel_2d", ["3", "5"], "2D kernel (rows, columns).")
flags.DEFINE_list("dilation_1d", ["1"], "1D dilation: one value or one per layer.")
flags.DEFINE_enum("dtype", "float32", ["float32", "float64", "complex64", "complex128"],
                  "Parameter dtype.")
flags.DEFINE_integer("repeats", 5, "Timed calls per case (median reported).")
flags.DEFINE_float("total_sz", None,
                   "Also time the fast model restricted to this S^z sector "
                   "(columns sector/s and sector/fast); lattices whose sites "
                   "cannot reach it are skipped.")
flags.DEFINE_integer("slow_max_sites", 256,
                     "Skip slow models above this many sites (their cost is O(N^2)).")


flags.register_validator(
    "families", lambda names: set(names) <= set(zoo.models.FAMILIES),
    message=f"must be names of families, one of {sorted(zoo.models.FAMILIES)}")


def family_for(dim: str) -> str | None:
  """The family of `--families` a `dim` case times: on squares the first
  that needs a 2D lattice, else the first listed; on chains the first that
  does not need one (None: no family runs there)."""
  two_d = [name for name in FLAGS.families if zoo.models.FAMILIES[name].two_d]
  any_lattice = [name for name in FLAGS.families if name not in two_d]
  listed = (two_d + FLAGS.families) if dim == "2d" else any_lattice
  return listed[0] if listed else None


def build(dim, size, fast, total_sz=None):
  family = zoo.models.FAMILIES[family_for(dim)]
  fields = dict(layers=FLAGS.layers, features=FLAGS.features, param_dtype=FLAGS.dtype)
  shape = (size,) if dim == "1d" else (size, size)
  if "pbc" in family.fields:
    fields["pbc"] = True
  if "heads" in family.fields:
    fields["heads"] = FLAGS.heads
  if "kernel_size" in family.fields:
    if family.two_d:
      fields.update(kernel_size=tuple(int(k) for k in FLAGS.kernel_2d))
    else:
      dilation = [int(d) for d in FLAGS.dilation_1d]
      fields.update(kernel_size=FLAGS.kernel_1d,
                    kernel_dilation=dilation[0] if len(dilation) == 1 else tuple(dilation))
  return zoo.models.CONSTRUCTORS[family.name][int(fast)](
      zoo.spin_half(shape, total_sz), **fields)


def reachable(n_sites, total_sz):
  """Whether n_sites spins 1/2 have configurations of total S^z total_sz."""
  try:
    zoo.spin_half(n_sites, total_sz)
  except ValueError:
    return False
  return True


def compiled_bytes(model, params, batch, mesh=None):
  chunk = sampler.chunk_for(batch, None, mesh, model=model)
  lowered = sampler._draw_jit.lower(model, params, jax.random.key(0), batch, chunk, mesh)
  m = lowered.compile().memory_analysis()
  if m is None:
    return float("nan")
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def time_cases(cases, mesh):
  """Median seconds per call of each (model, params), timed in alternating
  rounds so that every case sees the same machine load."""
  runs = [lambda seed, m=model, p=params: jax.block_until_ready(
      sampler.sample(m, p, jax.random.key(seed), FLAGS.batch, mesh=mesh))
          for model, params in cases]
  for run in runs:
    run(0)  # compile
  times = [[] for _ in runs]
  for seed in range(1, FLAGS.repeats + 1):
    for run, kept in zip(runs, times):
      start = time.perf_counter()
      run(seed)
      kept.append(time.perf_counter() - start)
  return [statistics.median(kept) for kept in times]


def measure(dim, size, mesh, sector=False) -> dict:
  """One row of the table: samples/s of each twin of `--models` (and of the
  fast model in the `--total_sz` sector when `sector`), the fast sampler's
  MiB (nan without it)."""
  n_sites = size if dim == "1d" else size * size
  mem = float("nan")
  models = {kind: build(dim, size, kind == "fast") for kind in FLAGS.models
            if not (kind == "slow" and n_sites > FLAGS.slow_max_sites)}
  if sector and reachable(n_sites, FLAGS.total_sz):
    models["sector"] = build(dim, size, True, FLAGS.total_sz)
  params = {kind: model.init(jax.random.key(0))[0]
            for kind, model in models.items()}
  seconds = time_cases([(models[k], params[k]) for k in models], mesh)
  rates = {kind: FLAGS.batch / s for kind, s in zip(models, seconds)}
  if "fast" in models:
    mem = compiled_bytes(models["fast"], params["fast"], FLAGS.batch,
                         mesh) / 2**20
  name = f"{dim} N={size}" if dim == "1d" else f"2d {size}x{size}"
  return dict(name=name, sites=n_sites, rates=rates, fast_mib=mem)


def main(argv):
  del argv
  runtime.setup()
  mesh = sharding.batch_mesh()
  print(f"# jax {jax.__version__} on {jax.devices()[0].platform} "
        f"(batch split over {len(jax.devices())} device(s)); "
        f"{','.join(FLAGS.families)}, "
        f"batch {FLAGS.batch}, {FLAGS.layers} layers, {FLAGS.features} "
        f"features, {FLAGS.dtype}, median of {FLAGS.repeats}")
  sector = FLAGS.total_sz is not None and "fast" in FLAGS.models
  print(f"{'case':<14}{'sites':>6}{'slow/s':>11}{'fast/s':>11}{'fast/slow':>10}"
        f"{'fast MiB':>10}{'us/sample/site':>16}"
        + (f"{'sector/s':>11}{'sector/fast':>12}" if sector else ""))
  cases = [("1d", int(n)) for n in FLAGS.sizes_1d] + [("2d", int(n)) for n in FLAGS.sizes_2d]
  fast_per_sample = {}
  runnable = {dim: family_for(dim) is not None for dim, _ in cases}
  for dim in sorted(dim for dim, ok in runnable.items() if not ok):
    print(f"# {dim}: none of --families runs there (skipped)")
  for dim, size in cases:
    if not runnable[dim]:
      continue
    case = measure(dim, size, mesh, sector)
    name, n_sites, rates, mem = (case["name"], case["sites"], case["rates"],
                                 case["fast_mib"])
    if "fast" in rates and dim == "1d":
      fast_per_sample[n_sites] = 1 / rates["fast"]
    slow, fast = rates.get("slow"), rates.get("fast")
    ratio = f"{fast / slow:.1f}x" if slow and fast else "-"
    per_site = f"{1e6 / fast / n_sites:.3f}" if fast else "-"
    line = (f"{name:<14}{n_sites:>6}{slow or 0:>11.0f}{fast or 0:>11.0f}{ratio:>10}"
            f"{mem:>10.1f}{per_site:>16}")
    if "sector" in rates:
      line += f"{rates['sector']:>11.0f}{rates['sector'] / fast:>11.2f}x"
    elif sector:
      line += f"{'-':>11}{'-':>12}"
    print(line, flush=True)
  sizes = sorted(n for n in fast_per_sample if n >= 64)
  if len(sizes) >= 2:
    slope = np.polyfit(np.log(sizes), np.log([fast_per_sample[n] for n in sizes]), 1)[0]
    print(f"# fast 1D time per sample ~ N^{slope:.2f} over N = {sizes[0]}..{sizes[-1]}")


if __name__ == "__main__":
  experiments.run(main)

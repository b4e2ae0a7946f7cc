r"""Where does a sampling call spend its time? XLA's ops, from JAX's profiler.

Traces `--calls` sampling calls of a registered model (after a warm-up) and
prints, for each compiled op (fusion, matmul, copy, ...), its total time per
call, how often it ran per call and its mean time per run. The ops inside the
site loop run once per site; an op that runs once per call is outside it.

  python -m experiments.profile_sampler   # 2D 10x10, the reference architecture
  python -m experiments.profile_sampler --model=fast_arnn_conv1d:L=256,layers=3,features=16,dtype=float32
  python -m experiments.profile_sampler --model=fast_arnn_dense:L=20 --top=15

Op names are XLA's (e.g. `ynn_fusion.1` a matmul, `*_dynamic-update-slice_*`
a cache update); dump the optimized HLO to see what each fuses:
`model = build.model(registry.get_config(...))`, `sampler._draw_jit.lower(model, params, key,
n, n, None).compile().as_text()`.
"""

from __future__ import annotations

import collections
import glob
import os
import statistics
import tempfile
import time

from absl import flags
import jax
from jax.profiler import ProfileData

import experiments
from experiments import runtime
from zoo import build, registry, sampler, sharding

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "fast_arnn_conv2d:L=10,layers=3,features=16,kernel=(3,5),dtype=float32",
                    "A registered model spec (`python -m experiments.catalog list`).")
flags.DEFINE_integer("batch", 1024, "Samples per call.")
flags.DEFINE_integer("calls", 3, "Traced calls (the table is per call).")
flags.DEFINE_integer("top", 25, "Ops to list, the most expensive first.")


def op_times(trace_dir: str) -> tuple[collections.Counter, collections.Counter]:
  """Total ns and run counts of XLA's CPU ops in the newest trace.

  XLA runs an op on one of its Eigen threads or, for small ones, on the
  calling PjRt client thread; both count.
  """
  files = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"),
                           recursive=True), key=os.path.getmtime)
  if not files:
    raise RuntimeError(f"the profiler wrote no trace under {trace_dir}")
  total, runs = collections.Counter(), collections.Counter()
  for plane in ProfileData.from_file(files[-1]).planes:
    for line in plane.lines:
      if not line.name.startswith(("tf_XLAEigen", "tf_XLAPjRtCpuClient")):
        continue
      for event in line.events:
        if event.name.startswith("ThreadpoolListener"):  # bookkeeping
          continue
        total[event.name] += event.duration_ns
        runs[event.name] += 1
  return total, runs


def main(argv):
  del argv
  runtime.setup()
  mesh = sharding.batch_mesh()
  model = build.model(registry.get_config(FLAGS.model))
  params, _ = model.init(jax.random.key(0))

  def call(seed):
    return jax.block_until_ready(
        sampler.sample(model, params, jax.random.key(seed), FLAGS.batch, mesh=mesh))

  call(0)
  times = []
  for seed in range(FLAGS.calls):
    start = time.perf_counter()
    call(100 + seed)
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    for seed in range(FLAGS.calls):
      call(2 + seed)
    jax.profiler.stop_trace()
    total, runs = op_times(trace_dir)
  n_sites = model.hilbert.size
  print(f"# {model}")
  print(f"# batch {FLAGS.batch}: {seconds * 1e3:.2f} ms per call untraced (median), "
        f"{FLAGS.batch / seconds:,.0f} samples/s, {seconds / n_sites * 1e6:.1f} us "
        f"per site; table per call, {FLAGS.calls} traced calls")
  print(f"{'ms/call':>9} {'runs/call':>9} {'us/run':>8}  op")
  # ThunkExecutor::Execute and the while loops contain the other ops.
  for name, ns in total.most_common():
    if FLAGS.top <= 0:
      break
    if name.startswith("ThunkExecutor") or name.startswith("while"):
      continue
    per_call = ns / FLAGS.calls
    print(f"{per_call / 1e6:9.3f} {runs[name] / FLAGS.calls:9.0f} "
          f"{ns / runs[name] / 1e3:8.1f}  {name}")
    FLAGS.top -= 1


if __name__ == "__main__":
  experiments.run(main)

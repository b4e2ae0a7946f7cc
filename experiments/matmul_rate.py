r"""What matrix-product rate does this machine reach at a layer's shapes?

Times y = W v for W [O, I] and v [I, B] (feature-major, as the cached
passes and the GRU's scans compute) and v [B, I] (batch-major), in float64
and float32, each repeated inside one jitted loop so that a call's
overhead is spread over many products, and prints GFLOP/s (2 O I B flops a
product). A stage of a step comes close to its flop count when its time is
near flops / this rate; docs/benchmarks.md compares them.

  python -m experiments.matmul_rate                         # the 2 x 16 GRU's cell
  python -m experiments.matmul_rate --shapes=96x128,48x72 --batches=512,2048
"""

from __future__ import annotations

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

import experiments
import zoo  # noqa: F401  (float64 and the XLA flags)

FLAGS = flags.FLAGS


def define_flags():
  # The fused products of a 2 x 16 GRU on a periodic square lattice:
  # [3F, I + D F] with I = 4 K = 8 (layer 0) and I = F = 16 (layer 1).
  flags.DEFINE_list("shapes", ["48x72", "48x80"], "O x I of each product.")
  flags.DEFINE_list("batches", ["512", "2048"], "Columns B of v.")
  flags.DEFINE_list("dtypes", ["float64", "float32"], "Dtypes.")
  flags.DEFINE_integer("repeats", 50, "Products per timed call.")
  flags.DEFINE_integer("rounds", 7, "Timed calls; the median is printed.")


def rate(out: int, inputs: int, batch: int, dtype, batch_major: bool,
         repeats: int, rounds: int) -> float:
  """GFLOP/s of `repeats` products in one call, median of `rounds`."""
  w = jnp.full((out, inputs), 1e-3, dtype)
  v = jnp.ones((batch, inputs) if batch_major else (inputs, batch), dtype)

  def body(_, v):  # each product feeds the next, so none is skipped
    y = v @ w.T if batch_major else w @ v
    keep = min(out, inputs)
    if batch_major:
      return v.at[:, :keep].add(y[:, :keep])
    return v.at[:keep].add(y[:keep])

  run = jax.jit(lambda v: jax.lax.fori_loop(0, repeats, body, v))
  jax.block_until_ready(run(v))
  times = []
  for _ in range(rounds):
    start = time.perf_counter()
    jax.block_until_ready(run(v))
    times.append(time.perf_counter() - start)
  return 2 * out * inputs * batch * repeats / statistics.median(times) / 1e9


def main(argv):
  del argv
  print(f"# {jax.devices()[0].device_kind}; GFLOP/s, median of "
        f"{FLAGS.rounds} calls of {FLAGS.repeats} products")
  print(f"{'shape':>10} {'B':>6} {'dtype':>8} {'W v':>8} {'v W^T':>8}")
  for shape in FLAGS.shapes:
    out, _, inputs = shape.partition("x")
    for batch in FLAGS.batches:
      for dtype in FLAGS.dtypes:
        figures = [rate(int(out), int(inputs), int(batch), jnp.dtype(dtype),
                        major, FLAGS.repeats, FLAGS.rounds)
                   for major in (False, True)]
        print(f"{shape:>10} {batch:>6} {dtype:>8} {figures[0]:8.3g} "
              f"{figures[1]:8.3g}", flush=True)


if __name__ == "__main__":
  define_flags()
  experiments.run(main)

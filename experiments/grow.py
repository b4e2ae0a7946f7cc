r"""Grow the lattice: train at L, continue at L + 2, ... (transfer).

  python -m experiments.grow --config=heisenberg_square_6x6 --sizes=4,6
  python -m experiments.grow --config=fast_gru_experiment.py --sizes=4,6,8 \
      --steps=200,300,300 --workdir=workdirs/grow

Each stage trains the experiment `--config` on an L x L lattice (L sites on
a chain) in `WORKDIR/L<L>`, starting from the previous stage's parameters
(`init.from`, `zoo.transfer`: a weight-shared family, its parameters the
same at every size); the first stage starts as the config says
(`experiments.stages`, whose stages may change anything else). A stage
whose workdir holds a finished run is not trained again, so rerunning the
command resumes where it stopped. `WORKDIR/grow.json` records every
stage's result; the last line printed is the last stage's summary. Growing
the lattice this way is how Moss et al. 2025 (arXiv:2502.17144) reach
10 x 10 with 2D recurrent networks.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

import experiments
from experiments import stages as stages_lib
from zoo import checks

STAGE = "L{}"  # a stage's workdir under --workdir
RECORD = "grow.json"


def grow(cfg, sizes: Sequence[int], workdir: str,
         steps: Sequence[int] | None = None, mesh=None) -> list[dict]:
  """Trains `cfg` at each size in turn, each stage from the one before
  (`experiments.stages.run_stages`, one stage per size).

  Returns one record per stage (size, workdir, the result's fields).
  """
  sizes = [checks.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
  if steps is not None and len(steps) not in (1, len(sizes)):
    raise checks.FieldError("steps", tuple(steps),
                            f"must be one value or one per size ({len(sizes)})")
  dims = len(cfg.lattice.shape)
  stages = []
  for i, size in enumerate(sizes):
    stage = {"lattice.shape": (size,) * dims}
    if steps is not None:
      stage["vmc.steps"] = steps[min(i, len(steps) - 1)]
    stages.append(stage)
  records = stages_lib.run_stages(
      cfg, stages, workdir, names=[STAGE.format(s) for s in sizes],
      record=RECORD, mesh=mesh)
  return [dict(size=size, **record) for size, record in zip(sizes, records)]


def _ints(name: str, values: Sequence[str]) -> list[int]:
  try:
    return [int(v) for v in values]
  except ValueError:
    raise checks.FieldError(name, ",".join(values),
                            "must be integers separated by commas") from None


def run_command(argv: Sequence[str]) -> None:
  stages_lib.command(
      argv, "grow", lambda spec, workdir, mesh: grow(
          flags.FLAGS.config, _ints("sizes", flags.FLAGS.sizes), workdir,
          _ints("steps", flags.FLAGS.steps) or None, mesh=mesh),
      lambda record: f"L={record['size']}")


def main():
  experiments.define_config_flag("config")
  flags.DEFINE_list("sizes", None, "lattice sides, in order", required=True)
  flags.DEFINE_list("steps", [], "VMC steps per stage: one value or one per "
                    "size; default: the config's")
  flags.DEFINE_string("workdir", None,
                      "the stages' parent directory; default "
                      "workdirs/grow-<config name>")
  experiments.define_traceback_flag()
  experiments.run(run_command)


if __name__ == "__main__":
  main()

r"""Training runs side by side: error against steps and against wall time.

  python -m experiments.compare_runs \
      --run="1024 samples, SR=workdirs/a" \
      --run="256 samples, then symmetrized=workdirs/s/stage1+workdirs/s/stage2" \
      --marks=5m,10m,30m --plot=docs/images/recipes_6x6.png

A `--run` is `LABEL=WORKDIR`, or several workdirs joined by `+` for the
stages of one run (`experiments.stages`), each stage's wall time after the
last's (its evaluation included, from its `result.json`). For each run the
table gives its steps, its wall time and its final evaluation's relative
error (that of its last stage), then, at each wall-time mark, the median
relative error of the steps' energies over the last `--window` steps
before the mark within its stage (blank where the run ended before). The plot
draws the
same medians against wall time and against steps.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

import experiments
from experiments import workdir as workdir_lib
from zoo import checks

FLAGS = flags.FLAGS


def load_run(workdirs: Sequence[str]) -> dict:
  """The metrics of consecutive stages as one run: rows with `wall_s`
  (and `step`) counted from the first stage's start, and the last stage's
  result.

  Raises:
    ValueError: a workdir holds no metrics or no result.
  """
  rows, wall, step = [], 0.0, 0
  result = None
  for index, workdir in enumerate(workdirs):
    metrics = os.path.join(workdir, workdir_lib.METRICS_FILE)
    result_path = os.path.join(workdir, workdir_lib.RESULT_FILE)
    for path in (metrics, result_path):
      if not os.path.exists(path):
        raise ValueError(f"{workdir} holds no {os.path.basename(path)}: not "
                         "a finished run's workdir")
    with open(result_path) as f:
      result = json.load(f)
    stage = workdir_lib.read_metrics(metrics)
    rows += [dict(r, step=step + r["step"], wall_s=wall + r["wall_s"],
                  stage=index)
             for r in stage if r.get("relative_error") is not None]
    step += result["steps"]
    wall += result["wall_s"]  # training and the evaluation
  return dict(rows=rows, result=result, steps=step, wall_s=wall)


def smoothed(rows: Sequence[dict], window: int) -> np.ndarray:
  """The median relative error over the last `window` rows of the same
  stage, at each row."""
  errors = np.array([r["relative_error"] for r in rows])
  stages = np.array([r["stage"] for r in rows])
  out = []
  for i in range(len(errors)):
    first = max(0, i + 1 - window)
    same = stages[first:i + 1] == stages[i]
    out.append(np.median(errors[first:i + 1][same]))
  return np.array(out)


def at_mark(run: dict, errors: np.ndarray, seconds: float):
  """The smoothed error of the last row before `seconds`, or None where the
  run ended (its evaluation included) before them."""
  walls = np.array([r["wall_s"] for r in run["rows"]])
  before = np.flatnonzero(walls <= seconds)
  if not before.size or run["wall_s"] < seconds:
    return None
  return float(errors[before[-1]])


def table(runs: dict[str, dict], marks: Sequence[float], window: int) -> str:
  head = ["run", "steps", "wall", "final rel. error"] + [
      f"at {_minutes(m)}" for m in marks]
  lines = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
  for label, run in runs.items():
    errors = smoothed(run["rows"], window)
    cells = [label, str(run["steps"]), _minutes(run["wall_s"]),
             f"{run['result']['relative_error']:.2e}"]
    for mark in marks:
      value = at_mark(run, errors, mark)
      cells.append("" if value is None else f"{value:.1e}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(path: str, runs: dict[str, dict], window: int, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, (by_wall, by_step) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
  for label, run in runs.items():
    errors = smoothed(run["rows"], window)
    walls = np.array([r["wall_s"] for r in run["rows"]]) / 60
    steps = np.array([r["step"] for r in run["rows"]])
    line, = by_wall.semilogy(walls, errors, lw=1.2, label=label)
    by_step.semilogy(steps, errors, lw=1.2, color=line.get_color())
    final = run["result"]["relative_error"]
    by_wall.plot(run["wall_s"] / 60, final, "o", color=line.get_color())
    by_step.plot(run["steps"], final, "o", color=line.get_color())
  by_wall.set_xlabel("wall time (minutes)")
  by_step.set_xlabel("step")
  by_step.set_xscale("log")
  by_wall.set_ylabel(f"|E - E0| / |E0| (median of {window} steps; "
                     "dot: final evaluation)")
  by_wall.legend(fontsize=8)
  by_wall.set_title(title)
  for ax in (by_wall, by_step):
    ax.grid(alpha=0.3, which="both")
  fig.tight_layout()
  workdir_lib.atomic_write(path,
                           lambda f: fig.savefig(f, format="png", dpi=100))
  plt.close(fig)


def _minutes(seconds: float) -> str:
  minutes = seconds / 60
  return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"


def parse_run(text: str) -> tuple[str, list[str]]:
  label, sep, dirs = text.rpartition("=")
  if not sep or not label or not dirs:
    raise checks.FieldError("run", text, "must be LABEL=WORKDIR[+WORKDIR...]")
  return label, dirs.split("+")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  with experiments.clean_errors(ValueError):
    runs = {}
    for text in FLAGS.run:
      label, dirs = parse_run(text)
      runs[label] = load_run(dirs)
    marks = [checks.duration(f"marks[{i}]", m) for i, m in
             enumerate(FLAGS.marks)]
    window = checks.positive_int("window", FLAGS.window)
  print(table(runs, marks, window), flush=True)
  if FLAGS.plot:
    plot(FLAGS.plot, runs, window, FLAGS.title)


if __name__ == "__main__":
  flags.DEFINE_multi_string("run", None, "LABEL=WORKDIR, or the stages of "
                            "one run joined by +", required=True)
  flags.DEFINE_list("marks", ["5m", "10m", "30m", "60m"],
                    "wall times at which the table reads each run's error")
  flags.DEFINE_integer("window", 100, "steps in each median")
  flags.DEFINE_string("plot", None, "write the figure here (png)")
  flags.DEFINE_string("title", "", "the figure's title")
  experiments.run(main)

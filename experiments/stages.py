r"""Staged training: each stage a few overrides of one experiment, each
starting from the last stage's parameters.

  python -m experiments.stages --config=heisenberg_square_6x6
  python -m experiments.stages --config=heisenberg_square_6x6 \
      --stage="vmc.n_samples=256 vmc.budget=35m optimizer.sr.solver=minsr" \
      --stage="model.symmetries=point_group,spin_flip vmc.budget=18m
               vmc.n_samples=256 optimizer.learning_rate=0.01"

Without `--stage`, the stages `configs.experiments.STAGES` registers for
the experiment run. A stage is `section.field=value` overrides of `--config` (and of its
`--config.section.field=value` overrides), separated by spaces; a value is
read as a Python literal (`0.01`, `(6, 6)`, `None`) or else kept as a
string (`35m`, `point_group,spin_flip`). A stage may change anything a
config holds: the lattice (`lattice.shape=(6,6)`: a weight-shared family,
`zoo.transfer`), the symmetries the model is averaged over (a symmetrized
stage starts from the plain model's parameters), the batch, the optimizer,
the steps or the budget. `vmc.steps=0` trains nothing: the stage is the
evaluation of the last stage's parameters as its config builds the model,
e.g. a trained model's energy symmetrized.

Stage i trains in `WORKDIR/stage<i>` (from 1) from the parameters of stage
i - 1 (`init.from`); the first starts as the config says. A stage whose
workdir holds a finished run is not trained again, so rerunning the command
resumes where it stopped. `WORKDIR/stages.json` records every stage's
overrides and result; the last line printed is the last stage's summary.
Symmetries only in a last stage is how Moss et al. 2025 (arXiv:2502.17144)
train their 2D GRUs; `experiments.grow` is the stages that grow a lattice.
"""

from __future__ import annotations

import ast
import copy
import json
import os
from typing import Callable, Mapping, Sequence

from absl import app
from absl import flags
from absl import logging

from configs import experiments as experiment_configs
import experiments
from experiments import runtime
from experiments import vmc as launcher
from experiments import workdir as workdir_lib
from zoo import checks, sharding

STAGE = "stage{}"  # a stage's workdir under --workdir, numbered from 1
RECORD = "stages.json"


def parse_stage(text: str, name: str = "stage") -> dict[str, object]:
  """`"a.b=1 c.d=x"` -> {"a.b": 1, "c.d": "x"}: values as Python literals,
  or as strings where they are not one.

  Raises:
    zoo.checks.FieldError: an item is not `section.field=value`, or a field
      comes twice.
  """
  overrides = {}
  for item in text.split():
    key, sep, value = item.partition("=")
    if not sep or not key or "." not in key:
      raise checks.FieldError(name, text, f"{item!r} is not of the form "
                              "section.field=value")
    if key in overrides:
      raise checks.FieldError(name, text, f"sets {key} twice")
    try:
      overrides[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      overrides[key] = value
  return overrides


def stage_config(cfg, overrides: Mapping[str, object], start_from: str):
  """A copy of `cfg` with `overrides` (dotted paths), starting from
  `start_from` (a workdir, or "" for the config's own start).

  Raises:
    zoo.checks.FieldError: an override names no field of `cfg`, or gives a
      field a value of another type.
  """
  cfg = copy.deepcopy(cfg)
  cfg.unlock()
  for key, value in overrides.items():
    *sections, field = key.split(".")
    section = cfg
    for part in sections:
      if part not in section:
        raise checks.FieldError(key, value, f"{part!r} is not a section of "
                                "the config")
      section = section[part]
    if field not in section:
      raise checks.FieldError(key, value, "is not a known field; known: " +
                              ", ".join(sorted(section.keys())))
    try:
      section[field] = value
    except TypeError as e:
      raise checks.FieldError(key, value, str(e)) from None
  if start_from:
    cfg.init["from"] = start_from
  return cfg


def run_stages(cfg, stages: Sequence[Mapping[str, object]], workdir: str,
               names: Sequence[str] | None = None, record: str = RECORD,
               mesh=None) -> list[dict]:
  """Trains `cfg` with each stage's overrides in turn, each stage from the
  parameters of the one before.

  Args:
    names: the stages' workdirs under `workdir` (default stage1, stage2..).
    record: the file under `workdir` that lists the stages' results.

  Returns:
    one record per stage: its name, workdir, overrides and result fields.
  """
  if not stages:
    raise checks.FieldError("stage", list(stages), "must name one stage or more")
  names = list(names or [STAGE.format(i + 1) for i in range(len(stages))])
  # Every stage's config is checked before the first trains.
  configs = [stage_config(cfg, overrides, "") for overrides in stages]
  records, start_from = [], cfg.init["from"]
  for name, overrides, stage in zip(names, stages, configs):
    if start_from:
      stage.init["from"] = start_from
    here = os.path.join(workdir, name)
    result_path = os.path.join(here, workdir_lib.RESULT_FILE)
    if os.path.exists(result_path):
      logging.info("Stage %s is done in %s", name, here)
    else:
      logging.info("Stage %s in %s, from %r", name, here, start_from)
      launcher.train(stage, here, mesh=mesh)
    with open(result_path) as f:  # the result with its wall time
      result = json.load(f)
    records.append(dict(stage=name, workdir=here,
                        overrides=dict(overrides),
                        **result))
    workdir_lib.atomic_write(os.path.join(workdir, record), lambda f: f.write(
        json.dumps(records, indent=1, default=str) + "\n"), "w")
    start_from = here
  return records


def registered_stages(spec: str) -> tuple[str, ...]:
  """The stages `configs.experiments.STAGES` registers for the experiment
  of `spec` (its arguments apply to every stage).

  Raises:
    zoo.checks.FieldError: none are registered for it.
  """
  name = launcher.config_name(spec)
  if name not in experiment_configs.STAGES:
    raise checks.FieldError(
        "stage", None, f"give one --stage or more: {name!r} has no registered "
        f"stages (those that do: {', '.join(experiment_configs.STAGES)})")
  return experiment_configs.STAGES[name]


def command(argv: Sequence[str], prefix: str, train_stages: Callable,
            label: Callable[[dict], str]) -> None:
  """The command of a staged launcher (this one, `experiments.grow`):
  `train_stages(spec, workdir, mesh)` -> the stages' records, then one line
  a stage, `label(record): summary`. The workdir defaults to
  workdirs/<prefix>-<config name>."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  runtime.setup()
  spec = experiments.config_spec(flags.FLAGS["config"])
  workdir = flags.FLAGS.workdir or os.path.join(
      "workdirs", f"{prefix}-" + launcher.config_name(spec))
  with experiments.clean_errors(ValueError, FloatingPointError,
                                traceback=flags.FLAGS.traceback):
    records = train_stages(spec, workdir, sharding.batch_mesh())
  if runtime.is_main_process():
    for record in records:
      print(f"{label(record)}: {record['summary']}", flush=True)


def run_command(argv: Sequence[str]) -> None:
  def train_stages(spec, workdir, mesh):
    texts = flags.FLAGS.stage or registered_stages(spec)
    stages = [parse_stage(text, f"stage[{i}]") for i, text in enumerate(texts)]
    return run_stages(flags.FLAGS.config, stages, workdir, mesh=mesh)

  command(argv, "stages", train_stages, lambda record: record["stage"])


def main():
  experiments.define_config_flag("config")
  flags.DEFINE_multi_string(
      "stage", None, "one stage: section.field=value overrides separated by "
      "spaces; repeat the flag for each stage, in order; default: the "
      "stages configs.experiments.STAGES registers for --config")
  flags.DEFINE_string("workdir", None, "the stages' parent directory; "
                      "default workdirs/stages-<config name>")
  experiments.define_traceback_flag()
  experiments.run(run_command)


if __name__ == "__main__":
  main()

"""Trained models that ship with the package.

Each is two files in this folder: NAME.json, the experiment config that
trained it and its record (energy, error, the exact or reference energy and
its method, relative error, steps, wall time, machine), and
NAME.npz, its parameters, each array under its tree path (`zoo.trees`).
`python -m experiments.catalog pretrained` lists them; a run starts from one
with `--config=EXPERIMENT:init=pretrained:NAME` (the argument `init`;
`--config.init.from` cannot be a flag: `from` is a Python keyword), Python
with `source(NAME)` or `load(NAME)`. `python -m experiments.catalog
save_pretrained WORKDIR NAME` adds one from a finished run.
"""

from __future__ import annotations

import importlib.resources
import json
import pathlib
from typing import Any, Mapping, NamedTuple

import numpy as np

from zoo import build
from zoo import config_tools
from zoo import transfer

PREFIX = "pretrained:"  # how `init.from` names a trained model


class Pretrained(NamedTuple):
  """A trained model of the zoo.

  Attributes:
    name: its name.
    config: the experiment config that trained it.
    arrays: {tree path: array} of its parameters.
    record: what its run measured (see the module docstring).
  """
  name: str
  config: Any
  arrays: Mapping[str, np.ndarray]
  record: dict[str, Any]

  def model(self):
    """(the model of its config, its parameters as that model's tree)."""
    model = build.model(self.config)
    return model, transfer.params_for(self.source(), model)

  def source(self) -> transfer.Source:
    return transfer.Source(self.config, self.arrays, f"{PREFIX}{self.name}")


def _files(directory=None):
  """This folder (the package's data), or another one."""
  if directory is not None:
    return pathlib.Path(directory)
  return importlib.resources.files(__package__)


def names(directory=None) -> list[str]:
  """The names of the trained models, sorted."""
  return sorted(f.name[:-len(".json")] for f in _files(directory).iterdir()
                if f.name.endswith(".json"))


def load(name: str, directory=None) -> Pretrained:
  """The trained model `name` (of this package, or of `directory`).

  Raises:
    ValueError: naming the known models if there is no such one.
  """
  known = names(directory)
  if name not in known:
    raise ValueError(f"no trained model {name!r}; the zoo has: "
                     f"{', '.join(known) or '(none)'}")
  files = _files(directory)
  record = json.loads(files.joinpath(f"{name}.json").read_text())
  with files.joinpath(f"{name}.npz").open("rb") as f, np.load(f) as data:
    arrays = {key: data[key] for key in data.files}
  config = config_tools.config_from_json(json.dumps(record.pop("config")))
  return Pretrained(name=name, config=config, arrays=arrays, record=record)


def source(name: str, directory=None) -> transfer.Source:
  """The parameters of `name`, to start a run from (`zoo.transfer`)."""
  return load(name, directory).source()

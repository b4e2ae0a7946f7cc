"""Starting a model from another run's parameters (transfer).

A weight-shared family has parameters whose shapes do not depend on the
lattice size, so parameters trained at L x L start a run at L' x L'
(`SizeTransferTest`; growing the lattice step by step as in Moss et al.
2025, arXiv:2502.17144). A `Source` holds the arrays by tree path
(`zoo.trees`), from a run's workdir (`experiments.workdir.load_params`) or
a trained model of the zoo (`zoo.pretrained.load`), with the config that
made them; `params_for` checks that they fit the model of another config.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from zoo import checks
from zoo import models
from zoo import trees


class Source(NamedTuple):
  """Parameters to start from.

  Attributes:
    config: the config of the run that made them (its `model` section
      names the family).
    arrays: {tree path: array} of the parameters.
    description: where they come from, for errors (a workdir, a name).
  """
  config: Any
  arrays: Mapping[str, Any]
  description: str


def params_for(source: Source, model: models.Wavefunction):
  """The parameters of `source` as `model`'s params tree.

  Raises:
    zoo.checks.FieldError: (field `init.from`) naming what does not fit: the
      family, a family whose parameters depend on the number of sites, or
      the first tree path of another shape or dtype.
  """
  family = model.spec.family
  theirs = source.config.model.get("family")
  if theirs != family:
    raise checks.FieldError(
        "init.from", source.description,
        f"holds a {theirs} model; this config's model.family is "
        f"{family!r}: transfer needs the same family")
  try:
    return trees.from_paths(model.parameter_shapes(), source.arrays,
                            source.description)
  except trees.TreeMismatch as e:
    if family in models.SIZE_DEPENDENT:
      shared = [f for f in models.FAMILIES if f not in models.SIZE_DEPENDENT]
      raise checks.FieldError(
          "init.from", source.description,
          f"model.family={family!r} has parameters whose shapes depend on "
          f"the number of sites (this model: {model.hilbert.size}): transfer "
          f"needs a weight-shared family ({', '.join(shared)}); {e}"
          ) from None
    raise checks.FieldError("init.from", source.description,
                            f"does not fit this config's model: {e}") from None

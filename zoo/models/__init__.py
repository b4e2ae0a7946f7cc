"""ARNN families, their fast twins and the transform bundle.

Every family's constructors are attributes here (and of `zoo`), the
built-in ones by name, a family added by a body module's record through
`MODELS`.
"""

from zoo.models.arnn import ARNN, ARNNSpec, normalize_log_psi
from zoo.models.wavefunction import Model, Wavefunction
from zoo.models.families import (CONSTRUCTORS, FAMILIES, FAMILY_FIELDS,
                                 FIELDS, MODELS, SIZE_DEPENDENT,
                                 ARNNGRU, ARNNConv1D, ARNNConv2D, ARNNDense,
                                 ARNNGatedConv1D, ARNNGatedConv2D,
                                 ARNNTransformer, FastARNNGRU, FastARNNConv1D,
                                 FastARNNConv2D, FastARNNDense,
                                 FastARNNGatedConv1D, FastARNNGatedConv2D,
                                 FastARNNTransformer, make_spec)
from zoo.models.record import Family


def __getattr__(name):
  """A constructor of a family the names above do not list."""
  if name in MODELS:
    return MODELS[name]
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

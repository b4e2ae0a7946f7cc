"""ARNN families, their fast twins and the transform bundle."""

from zoo.models.arnn import ARNN, ARNNSpec, normalize_log_psi
from zoo.models.bundle import Wavefunction
from zoo.models.families import (FAMILIES, FIELDS, MODELS, ARNNConv1D, ARNNConv2D, ARNNDense,
                                 FastARNNConv1D, FastARNNConv2D, FastARNNDense,
                                 make_spec)

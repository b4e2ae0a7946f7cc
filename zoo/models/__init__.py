"""ARNN families, their fast twins and the transform bundle."""

from zoo.models.arnn import ARNN, ARNNSpec, normalize_log_psi
from zoo.models.bundle import Model, Wavefunction
from zoo.models.families import (FAMILIES, FAMILY_FIELDS, FIELDS, MODELS,
                                 SIZE_DEPENDENT,
                                 ARGRU, ARNNConv1D, ARNNConv2D, ARNNDense,
                                 ARNNGatedConv1D, ARNNGatedConv2D,
                                 ARTransformer, FastARGRU, FastARNNConv1D,
                                 FastARNNConv2D, FastARNNDense,
                                 FastARNNGatedConv1D, FastARNNGatedConv2D,
                                 FastARTransformer, make_spec)

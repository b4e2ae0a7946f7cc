"""arnn-zoo: fast autoregressive neural-network wavefunctions in dm-haiku.

Importing `zoo` enables float64 in JAX (`jax_enable_x64`): the models default
to float64 parameters, as variational energies need. float32 models keep
float32 throughout.
"""

import jax

jax.config.update("jax_enable_x64", True)

from zoo.hilbert import Hilbert, fock, spin_half, spin_one  # noqa: E402
from zoo.models import (MODELS, ARNNConv1D, ARNNConv2D, ARNNDense,  # noqa: E402
                        FastARNNConv1D, FastARNNConv2D, FastARNNDense,
                        Wavefunction)

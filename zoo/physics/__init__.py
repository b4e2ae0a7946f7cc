"""Physics for variational Monte Carlo: lattices, Hamiltonians, exact energies.

Nothing here imports the models or the sampler; a wavefunction enters only as
a `log_psi_fn(params, x)` passed to `local_energy`.
"""

from zoo.physics.exact import ground_state_energy
from zoo.physics.hamiltonians import (Heisenberg, J1J2, PauliTerms,
                                      SpinHalfHamiltonian,
                                      TransverseFieldIsing, sz_sector_states)
from zoo.physics.lattice import Lattice, chain, square
from zoo.physics.reference import (KnownEnergy, Reference, exact_or_reference,
                                   reference_energy, reference_for)

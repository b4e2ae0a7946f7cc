"""SPRING: minSR with a momentum-like reuse of the previous update.

SPRING (Goldshlager, Abrahamsen & Lin 2024, arXiv:2401.10190) keeps the
direction phi of the previous step and, at each step, takes the direction
closest to its decayed copy mu phi_prev among those that fit the SR problem
(`zoo.vmc.sr`, A and e in its normalization):

  phi = argmin_phi |A phi - e|^2 + lambda |phi - mu phi_prev|^2.

Written as phi = mu phi_prev + psi, psi solves the minSR problem of the
residual that the decayed direction leaves, e - mu A phi_prev:

  phi = mu phi_prev + A^T (A A^T + lambda 1_M)^{-1} (e - mu A phi_prev),

an [M, M] solve as in minSR (Chen & Heyl 2023, arXiv:2302.01941); in
parameter space, (A^T A + lambda) phi = A^T e + lambda mu phi_prev. With
mu = 0 it is minSR exactly. The paper's A is uncentred and gets a
1 1^T / n term in place of the centring; ours is centred. `params - dt phi`
is the step, so `optax.chain(spring(1e-3, 0.9), optax.sgd(dt))` is SPRING
with step dt; phi_prev is the direction before the learning rate (and any
transformation after this one), as in the paper.

Glossary of shapes:
  M: rows of A (samples, twice that for complex log psi), P: real
  parameters (a complex leaf counts twice).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from zoo import checks
from zoo.vmc import estimators
from zoo.vmc import sr as sr_lib

# The solvers SPRING accepts: its solve is minSR's.
SOLVERS = ("auto", "minsr")


class SpringState(NamedTuple):
  """previous: [P] phi of the last step (zeros before the first), in real
  coordinates (`estimators.RealCoordinates`)."""
  previous: jax.Array


def _jacobian_product(problem: sr_lib.SRProblem,
                      v: jax.Array) -> jax.Array:  # [P] -> [M]
  """A v, from the problem's jacobian or, for a problem that holds only
  A A^T and A^T's product, as the transpose of that linear product."""
  if problem.jacobian is not None:
    if problem.columns is not None:
      v = v[problem.columns]
    return problem.jacobian @ v
  if problem.transpose is None:
    raise ValueError(
        "SPRING needs A in the SR problem: a jacobian, or A A^T with A^T's "
        "product; build it with make_sr_problem(..., solver='minsr')")
  zeros = jnp.zeros_like(problem.residual)
  _, transposed = jax.vjp(problem.transpose, zeros)
  return transposed(v)[0]


def spring_direction(problem: sr_lib.SRProblem,
                     force: jax.Array,  # [P]
                     previous: jax.Array,  # [P]
                     *, diag_shift: float,
                     decay: float) -> jax.Array:  # [P]
  """phi = decay previous + minSR's solution for e - decay A previous.

  force is F = gradient / 2 (only its shape is used: minSR reads the
  residual); `previous` is zero off the problem's columns, as every phi is.
  """
  residual = problem.residual - decay * _jacobian_product(problem, previous)
  correction = sr_lib.natural_gradient(
      problem._replace(residual=residual), force, diag_shift=diag_shift,
      solver="minsr")
  return decay * previous + correction


def spring(diag_shift: float = 1e-3, decay: float = 0.9,
           solver: str = "minsr") -> optax.GradientTransformationExtraArgs:
  """SPRING as an optax transformation: gradient -> direction phi.

  Used as `zoo.vmc.sr.stochastic_reconfiguration` is (first in a chain,
  the extra argument `sr_problem`), it keeps phi of the last step in its
  state.

  Args:
    diag_shift: lambda > 0, as in SR (the same normalization).
    decay: mu in [0, 1); 0 gives minSR.
    solver: "minsr" (or "auto", which means minsr here).
  """
  diag_shift = checks.positive_number("diag_shift", diag_shift)
  if not checks.is_number(decay) or not 0 <= decay < 1:
    raise checks.FieldError("decay", decay, "must be a number in [0, 1)")
  decay = float(decay)
  checks.one_of("solver", solver, SOLVERS)

  def init(params):
    coords = estimators.RealCoordinates(params)
    return SpringState(previous=jnp.zeros((coords.size,), coords.real_dtype))

  def update(updates, state, params=None, *, sr_problem=None, **extra_args):
    del params, extra_args
    if sr_problem is None:
      raise ValueError(
          "sr_problem must be given to the update of spring(): an SRProblem "
          "or a callable solver -> SRProblem; got None")
    if callable(sr_problem):
      sr_problem = sr_problem("minsr")
    coords = estimators.RealCoordinates(updates)
    phi = spring_direction(sr_problem, coords.flatten(updates) / 2,
                           state.previous, diag_shift=diag_shift, decay=decay)
    return coords.unflatten(phi), SpringState(previous=phi)

  return optax.GradientTransformationExtraArgs(init, update)

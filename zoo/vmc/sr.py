"""Stochastic reconfiguration (SR) and minSR as an optax transformation.

SR (Sorella 1998; the natural gradient of Amari 1998 in the Fubini-Study
metric) replaces the energy gradient by the solution delta of

  (S + lambda 1) delta = F,
  S_kl = Re sum_x w(x) conj(dO_k(x)) dO_l(x),   dO = O - <O>,
  F_k  = Re sum_x w(x) conj(dO_k(x)) (E_loc(x) - E) = (dE / d theta_k) / 2,

over the real coordinates theta of the parameters (a complex parameter
counts as its real and imaginary parts, see `zoo.vmc.estimators`), with
weights w summing to one (1 / n for n samples). `params - dt * delta` is a
step dt of imaginary-time evolution projected on the variational manifold,
so `optax.chain(stochastic_reconfiguration(...), optax.sgd(dt))` is the
classic SR.

Both sums are products of one real matrix A [M, P] with itself or with one
real vector e [M]: the rows of A are sqrt(w(x)) dO(x) (Re, and for complex
log psi also Im, parts stacked as separate rows) and e likewise stacks
sqrt(w(x)) (E_loc(x) - E). Then S = A^T A and F = A^T e.

Solvers:
  cholesky: form S + lambda 1 [P, P] and solve by Cholesky. P up to a few
    thousand.
  cg: conjugate gradients on v -> S v + lambda v; S is never formed. The
    products come from the dense A if the problem holds one, else from one
    forward-mode (jvp) and one reverse-mode (vjp) pass of log psi over the
    samples per iteration, which needs no [M, P] matrix either.
  minsr: the sample-space form (Chen & Heyl 2023, arXiv:2302.01941), for
    P > M: delta = A^T (A A^T + lambda 1_M)^{-1} e, an [M, M] solve.
  auto: minsr if M < P, else cholesky (cg when the problem has no dense A).

Diagonal-shift convention: lambda is added to S as normalized above (weights
summing to one), in minSR to T = A A^T in the same normalization. With that
convention the two forms give the same delta for any lambda > 0, by
A^T (A A^T + lambda)^{-1} = (A^T A + lambda)^{-1} A^T. (Conventions that
scale T by the number of samples, or shift S relative to its diagonal, need
lambda rescaled accordingly.)

Glossary of shapes:
  n: samples, M: rows of A (n for real log psi, 2n for complex),
  P: real parameters (a complex leaf counts twice), N: sites.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo import checks
from zoo import chunks
from zoo import nn
from zoo.vmc import estimators

SOLVERS = ("auto", "cholesky", "cg", "minsr")


class SRProblem(NamedTuple):
  """What SR needs besides the gradient, in real coordinates.

  Attributes:
    residual: [M] e, the weighted centred local energies (rows as in A).
    jacobian: [M, P] A, the weighted centred log-derivatives; None when
      `matvec` alone is given. With `columns`, only those columns [M, P'].
    matvec: v [P] -> S v [P] without the shift, or None to use `jacobian`.
    columns: [P'] the coordinates the jacobian holds, or None for all; the
      others must have zero log-derivatives for every x (masked kernel
      entries), so that S and F vanish there and so does delta.
    gram: [M, M] T = A A^T, for minsr without A (`centred_gram`), with
    transpose: c [M] -> A^T c [P].
  """
  residual: jax.Array
  jacobian: jax.Array | None = None
  matvec: Callable[[jax.Array], jax.Array] | None = None
  columns: jax.Array | None = None
  gram: jax.Array | None = None
  transpose: Callable[[jax.Array], jax.Array] | None = None


def live_columns(params, live) -> np.ndarray | None:
  """The real coordinates (indices into P, in `estimators.RealCoordinates`
  order) where `live` (a params-shaped tree of bools, e.g.
  `zoo.Wavefunction.live_parameters()`) is True; None when all are."""
  if live is None:
    return None
  parts = []
  for leaf, mask in zip(jax.tree.leaves(params), jax.tree.leaves(live)):
    mask = np.ravel(np.broadcast_to(mask, jnp.shape(leaf)))
    parts += [mask, mask] if jnp.iscomplexobj(leaf) else [mask]
  mask = np.concatenate(parts)
  return None if mask.all() else np.flatnonzero(mask)


def _stack_parts(z: jax.Array, is_complex: bool) -> jax.Array:
  """[n, ...] -> [M, ...]: real rows, then imaginary rows if complex."""
  return jnp.concatenate([z.real, z.imag]) if is_complex else z.real


# Reverse passes of this many samples at a time under vmap, for a model
# without a layer probe (`zoo.Wavefunction.layer_probe`). Vmapped reverse
# passes through convolutions become grouped convolutions, whose cost on XLA
# CPU grows about quadratically with the group count, so few at a time is
# fastest there (BENCHMARKS.md, "Tuned constants"); accelerators may prefer
# more.
JACOBIAN_BATCH = 2


@functools.partial(jax.jit, static_argnames=("log_psi_fn", "batch_size"))
def centred_jacobian(log_psi_fn: estimators.LogPsiFn, params,
                     x: jax.Array,  # [n, N]
                     weights: jax.Array | None = None,
                     batch_size: int = JACOBIAN_BATCH,
                     columns: jax.Array | None = None) -> jax.Array:  # [M, P]
  """A: rows sqrt(w(x)) (O(x) - <O>), one reverse pass per sample.

  `batch_size` samples go through their reverse passes at once (see
  JACOBIAN_BATCH); it also bounds the activations held in memory.
  `columns`: keep only these coordinates ([M, P']).
  """
  checks.positive_int("batch_size", batch_size)
  coords = estimators.RealCoordinates(params)
  theta = coords.flatten(params)  # [P]
  is_complex = jnp.iscomplexobj(jax.eval_shape(log_psi_fn, params, x[:1]))

  def parts(theta, x_one):  # [P], [N] -> [K], K = 2 or 1
    log_psi = log_psi_fn(coords.unflatten(theta), x_one[None])[0]
    return jnp.stack([log_psi.real, log_psi.imag] if is_complex
                     else [log_psi.real])

  def row(x_one):  # [K, P] or [K, P']
    jac = jax.jacrev(parts)(theta, x_one)
    return jac if columns is None else jac[:, columns]

  n = x.shape[0]
  jac = jax.lax.map(row, x, batch_size=batch_size)  # [n, K, P]
  w = estimators.normalized_weights(weights, n, coords.real_dtype)  # [n]
  jac = jac - jnp.einsum("n,nkp->kp", w, jac)
  jac = jnp.sqrt(w)[:, None, None] * jac
  return jnp.swapaxes(jac, 0, 1).reshape(-1, jac.shape[-1])


# Configurations whose rows of A A^T are built at once from the layers'
# Gram factors: bounds the [K rows, M] sums carried up the sites (8 MiB
# each at 1024 x 1024 in float64, the size of a real model's A A^T).
GRAM_ROW_BLOCK = 1024


def _probed_rows(probe, params, x: jax.Array):
  """The layers' inputs and cotangents of the rows of A, from one reverse
  pass with respect to shifts at the layers' probe points (the samples are
  independent): ({layer: inputs [K, n images, ...]}, {layer: [K, n images,
  ...]}), rows (part, configuration), K = 2 parts (Re and Im log psi) or 1.

  The cotangents are dL/dRe(y) + i dL/dIm(y) (JAX's vjp gives their
  conjugate), as the layers' gradient rules take them.
  """
  rows = x.shape[0] * probe.images
  shifts = {name: jnp.zeros((rows, *point.shape[1:]), point.dtype)
            for name, point in probe.points.items()}

  def parts(shifts):  # [K, n]: Re log psi (and Im)
    log_psi, inputs = probe.log_psi(params, x, shifts)
    stacked = ([log_psi.real, log_psi.imag] if jnp.iscomplexobj(log_psi)
               else [log_psi.real])
    return jnp.stack(stacked), inputs

  out, vjp, inputs = jax.vjp(parts, shifts, has_aux=True)
  k = out.shape[0]
  eye = jnp.eye(k, dtype=out.dtype)
  cots = [vjp(jnp.broadcast_to(eye[i][:, None], out.shape))[0]
          for i in range(k)]
  rows_c = {name: jnp.conj(jnp.stack([c[name] for c in cots]))
            for name in probe.layers}
  rows_x = {name: jax.tree.map(lambda a: jnp.stack([a] * k), inputs[name])
            for name in probe.layers}
  return rows_x, rows_c


def _in_chunks(per_chunk, x: jax.Array, chunk_size: int | None):
  """per_chunk(x [c, N]) -> a tree of [K, c, ...], over chunks of at most
  chunk_size samples (all at once for None), merged to [K, n, ...]."""
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  return chunks.map_chunks(per_chunk, x, chunk_size, axis=1)


def _centre_rows(a: jax.Array, w: jax.Array, k: int) -> jax.Array:
  """Rows (part, sample) of [M, ...] -> sqrt(w) (row - its part's mean)."""
  a = a.reshape(k, w.shape[0], *a.shape[1:])
  mean = jnp.einsum("n,kn...->k...", w, a)[:, None]
  s = jnp.sqrt(w).reshape((1, -1) + (1,) * (a.ndim - 2))
  return (s * (a - mean)).reshape(-1, *a.shape[2:])


def probed_jacobian(probe, params, x: jax.Array,  # [n, N]
                    weights: jax.Array | None = None,
                    columns: jax.Array | None = None,
                    chunk_size: int | None = None) -> jax.Array:  # [M, P]
  """A of `centred_jacobian` from a model's `layer_probe()`: every
  sample's gradient from the layers' inputs and cotangents
  (their `gradient_rule`s, `zoo.nn.gradient_rules`), with no reverse pass
  per sample; at most `chunk_size` samples at a time through the passes."""
  coords = estimators.RealCoordinates(params)
  n = x.shape[0]
  w = estimators.normalized_weights(weights, n, coords.real_dtype)

  def rows(x_chunk):  # [K, c, P']
    rows_x, rows_c = _probed_rows(probe, params, x_chunk)
    k, ci = next(iter(rows_c.values())).shape[:2]  # ci = c images
    flat = lambda a: a.reshape(k * ci, *a.shape[2:])
    shapes = lambda name: {p: v.shape for p, v in params[name].items()}
    grads = {name: rule.sample_gradients(jax.tree.map(flat, rows_x[name]),
                                         flat(rows_c[name]), shapes(name))
             for name, rule in probe.layers.items()}
    jac = jax.vmap(coords.flatten)(grads)  # [K c images, P]
    if columns is not None:
      jac = jac[:, columns]
    # A sample's gradient is the sum over its images' (image-major rows).
    return jac.reshape(k, probe.images, -1, jac.shape[-1]).sum(axis=1)

  jac = _in_chunks(rows, x, chunk_size)
  k = jac.shape[0]
  return _centre_rows(jac.reshape(k * n, -1), w, k)


def centred_gram(probe, params, x: jax.Array,  # [n, N]
                 weights: jax.Array | None = None,
                 row_block: int = GRAM_ROW_BLOCK,
                 chunk_size: int | None = None) -> jax.Array:  # [M, M]
  """T = A A^T of `centred_jacobian`, without A, from a model's
  `layer_probe()` whose layers are all dense (`probe.dense`).

  With the layers' inputs and cotangents (`_probed_rows`),
  `MaskedDense1D.gradient_gram` gives the inner products of the samples'
  gradients. The cost is O(M^2 N F) against O(M P) for A and O(M^2 P) for
  A A^T, P ~ N^2 F^2 / 2. At most `chunk_size` samples at a time through
  the passes.
  """
  checks.positive_int("row_block", row_block)
  n = x.shape[0]
  real = estimators.real_dtype_of(params)
  w = estimators.normalized_weights(weights, n, real)
  rows_x, rows_c = _in_chunks(lambda xc: _probed_rows(probe, params, xc),
                              x, chunk_size)
  # The parts' rows share their configuration's inputs: one copy each.
  rows_x = jax.tree.map(lambda a: a[0], rows_x)  # [n, ...]
  k = next(iter(rows_c.values())).shape[0]
  block = min(row_block, n)
  pad = -n % block

  def blocks(a, axis):  # [.., n, ...] -> [n' / block, .., block, ...]
    a = jnp.pad(a, [(0, pad) if i == axis else (0, 0)
                    for i in range(a.ndim)])
    a = a.reshape(a.shape[:axis] + (-1, block) + a.shape[axis + 1:])
    return jnp.moveaxis(a, axis, 0)

  def block_rows(xc):  # T's rows of one block of configurations
    bx, bc = xc
    return sum(nn.MaskedDense1D.gradient_gram(
        *rule.dense, bx[name], bc[name], rows_x[name], rows_c[name],
        precision=jax.lax.Precision.HIGHEST)
               for name, rule in probe.layers.items())  # [K, block, K, n]

  t = jax.lax.map(block_rows, (
      jax.tree.map(lambda a: blocks(a, 0), rows_x),
      jax.tree.map(lambda a: blocks(a, 1), rows_c)))  # [blocks, K, b, K, n]
  t = jnp.moveaxis(t, 0, 1).reshape(k, -1, k * n)[:, :n].reshape(k * n, -1)
  # A = C G with G the raw gradients, C centring and weighting each
  # part's rows: T = C (G G^T) C^T.
  t = _centre_rows(_centre_rows(t, w, k).T, w, k)
  return t.astype(real)


def centred_transpose(log_psi_fn: estimators.LogPsiFn, params,
                      x: jax.Array,  # [n, N]
                      weights: jax.Array | None = None,
                      chunk_size: int | None = None
                      ) -> Callable[[jax.Array], jax.Array]:
  """c [M] -> A^T c [P] by one reverse pass of log psi over the samples.

  A^T c = sum_(k, x) u_k(x) O_k(x), with O_0 = Re O, O_1 = Im O and
  u = sqrt(w) c - w sum_x sqrt(w) c (the centring moved onto c), which is
  Re sum_x (u_0 - i u_1) O, one vjp.
  """
  coords = estimators.RealCoordinates(params)
  n = x.shape[0]
  w = estimators.normalized_weights(weights, n, coords.real_dtype)
  s = jnp.sqrt(w)

  def transpose(c):
    u = s * c.reshape(-1, n)
    u = u - w * jnp.sum(u, axis=1, keepdims=True)
    cotangent = u[0] - 1j * u[1] if u.shape[0] == 2 else u[0]
    return coords.flatten(estimators.log_psi_vjp(log_psi_fn, params, x,
                                                 cotangent, chunk_size))

  return transpose


def centred_matvec(log_psi_fn: estimators.LogPsiFn, params,
                   x: jax.Array,  # [n, N]
                   weights: jax.Array | None = None,
                   chunk_size: int | None = None
                   ) -> Callable[[jax.Array], jax.Array]:
  """v [P] -> S v [P] from one jvp and one vjp of log psi, S never formed.

  S v = Re sum_x w conj(O) (Ov - <Ov>): the jvp gives Ov for all samples,
  the vjp contracts it back, as in the energy gradient.
  """
  coords = estimators.RealCoordinates(params)
  n = x.shape[0]
  w = estimators.normalized_weights(weights, n, coords.real_dtype)
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)

  def directional(x_chunk, tangent):  # [C]
    return jax.jvp(lambda p: log_psi_fn(p, x_chunk), (params,), (tangent,))[1]

  def matvec(v):
    tangent = coords.unflatten(v)
    ov = chunks.map_chunks(lambda xc: directional(xc, tangent), x,
                           chunk_size)  # [n]
    centred = ov - jnp.sum(w * ov)
    g = estimators.log_psi_vjp(log_psi_fn, params, x, w * jnp.conj(centred),
                               chunk_size)
    return coords.flatten(g)

  return matvec


def make_sr_problem(log_psi_fn: estimators.LogPsiFn, params,
                    x: jax.Array,  # [n, N]
                    local_energies: jax.Array,  # [n]
                    *, weights: jax.Array | None = None,
                    chunk_size: int | None = None,
                    jacobian_batch: int = JACOBIAN_BATCH,
                    dense: bool = True, live=None, probe=None,
                    solver: str | None = None) -> SRProblem:
  """The SR problem of samples x, in the form its solver uses.

  dense=True builds the jacobian A (`centred_jacobian` with
  `batch_size=jacobian_batch`), of the `live` coordinates only (a
  params-shaped tree of bools, `zoo.Wavefunction.live_parameters()`, or
  None for all); dense=False only the jvp/vjp matvec, whose passes see at
  most `chunk_size` samples at a time.

  `solver`, when given, sets dense (False for "cg"). A `probe`
  (`zoo.Wavefunction.layer_probe()`, where not None) builds A from the
  layers (`probed_jacobian`) instead of per-sample reverse passes; if its
  layers are all dense and the solver is minsr, or "auto" with fewer rows
  than live coordinates, the problem holds A A^T (`centred_gram`) and
  A^T's product instead of A.
  """
  x = jnp.asarray(x)
  real = estimators.real_dtype_of(params)
  w = estimators.normalized_weights(weights, x.shape[0], real)
  is_complex = jnp.iscomplexobj(jax.eval_shape(log_psi_fn, params, x[:1]))
  centred = local_energies - jnp.sum(w * local_energies)
  residual = _stack_parts(jnp.sqrt(w) * centred, is_complex).astype(real)
  if solver is not None:
    _check_solver(solver)
    dense = solver != "cg"
  columns = live_columns(params, live)
  coordinates = (estimators.RealCoordinates(params).size if columns is None
                 else columns.size)
  if probe is not None and probe.dense and (solver == "minsr" or (
      solver == "auto" and residual.shape[0] < coordinates)):
    return SRProblem(
        residual=residual,
        gram=centred_gram(probe, params, x, weights, chunk_size=chunk_size),
        transpose=centred_transpose(log_psi_fn, params, x, weights,
                                    chunk_size))
  if dense:
    if columns is not None:
      columns = jnp.asarray(columns)
    if probe is not None:
      jacobian = probed_jacobian(probe, params, x, weights, columns,
                                 chunk_size)
    else:
      jacobian = centred_jacobian(log_psi_fn, params, x, weights,
                                  jacobian_batch, columns)
    return SRProblem(residual=residual, columns=columns, jacobian=jacobian)
  return SRProblem(residual=residual, matvec=centred_matvec(
      log_psi_fn, params, x, weights, chunk_size))


def energy_gradient(problem: SRProblem, like):
  """The energy gradient (`zoo.vmc.estimators` convention, a pytree like
  `like`) from a problem that holds A: 2 A^T e, zero off its columns; None
  for a problem without A (its matvec or Gram form)."""
  if problem.jacobian is None:
    return None
  coords = estimators.RealCoordinates(like)
  force = problem.jacobian.T @ problem.residual  # F = A^T e
  if problem.columns is not None:
    force = jnp.zeros(coords.size, force.dtype).at[problem.columns].set(force)
  return coords.unflatten(2 * force)


def resolve_solver(solver: str, problem: SRProblem) -> str:
  """The solver "auto" stands for, given the problem's shapes."""
  if problem.gram is not None:
    if solver not in ("auto", "minsr"):
      raise ValueError(
          f"solver={solver!r} cannot use an SR problem that holds A A^T "
          "(gram) only; use solver='minsr' or build the problem for it "
          "(make_sr_problem(..., solver=...))")
    return "minsr"
  if solver != "auto":
    return solver
  if problem.jacobian is None:
    return "cg"
  rows, params = problem.jacobian.shape
  return "minsr" if rows < params else "cholesky"


def natural_gradient(problem: SRProblem,
                     force: jax.Array,  # [P]
                     *, diag_shift: float, solver: str = "auto",
                     cg_tol: float = 1e-8,
                     cg_maxiter: int | None = None) -> jax.Array:  # [P]
  """delta = (S + diag_shift 1)^{-1} force, by the chosen solver.

  force is F = gradient / 2 in real coordinates; minsr uses
  `problem.residual` instead, whose A^T e is that F. A problem with
  `columns` is solved on those coordinates; delta is zero on the others.
  """
  _check_solver(solver)
  solver = resolve_solver(solver, problem)
  if problem.columns is not None and problem.jacobian is not None:
    inner = natural_gradient(
        problem._replace(columns=None), force[problem.columns],
        diag_shift=diag_shift, solver=solver, cg_tol=cg_tol,
        cg_maxiter=cg_maxiter)
    return jnp.zeros_like(force).at[problem.columns].set(inner)
  jac = problem.jacobian
  if solver in ("cholesky", "minsr") and jac is None and problem.gram is None:
    raise ValueError(
        f"solver={solver!r} needs a dense jacobian in the SR problem; build "
        "it with make_sr_problem(..., dense=True) or use solver='cg'")
  if solver == "cholesky":
    s = symmetric_product(jac.T) + diag_shift * jnp.eye(jac.shape[1], dtype=jac.dtype)
    return _solve_positive(s, force)
  if solver == "minsr":
    # T = A A^T and A^T's product, from A or given (`centred_gram`).
    t = symmetric_product(jac) if problem.gram is None else problem.gram
    transpose = problem.transpose or (lambda c: jac.T @ c)
    t = t + diag_shift * jnp.eye(t.shape[0], dtype=t.dtype)
    return transpose(_solve_positive(t, problem.residual))  # A^T [M]
  matvec = problem.matvec or (lambda v: jac.T @ (jac @ v))
  delta, _ = jax.scipy.sparse.linalg.cg(
      lambda v: matvec(v) + diag_shift * v, force, tol=cg_tol, atol=0.0,
      maxiter=cg_maxiter)
  return delta


# A A^T by blocks of rows when it has at least 4 such blocks: each block
# pair once, the lower triangle by transposition (docs/benchmarks.md, "Tuned
# constants": about 0.7x the full product's time at 1024-2048 rows).
TRIANGLE_ROW_BLOCK = 128
TRIANGLE_MAX_BLOCKS = 8


def symmetric_product(a: jax.Array) -> jax.Array:  # [M, P] -> [M, M]
  """a a^T, its upper blocks computed and mirrored: about half the work
  of the full product for many rows."""
  m = a.shape[0]
  blocks = min(TRIANGLE_MAX_BLOCKS, m // TRIANGLE_ROW_BLOCK)
  if blocks < 4:
    return a @ a.T
  bounds = np.linspace(0, m, blocks + 1).astype(int)
  parts = [a[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
  grid = [[None] * blocks for _ in range(blocks)]
  for i, rows in enumerate(parts):
    for j in range(i, blocks):
      grid[i][j] = rows @ parts[j].T
      grid[j][i] = grid[i][j].T
  return jnp.block(grid)


def _solve_positive(matrix: jax.Array, rhs: jax.Array) -> jax.Array:
  """matrix^-1 rhs by Cholesky, factored in float64 where JAX has it: a
  float32 problem's products stay float32, its solve does not (a shifted
  Gram matrix's round-off in float32 is of the order of small shifts)."""
  wide = jnp.float64 if jax.config.jax_enable_x64 else matrix.dtype
  solution = jax.scipy.linalg.cho_solve(
      jax.scipy.linalg.cho_factor(matrix.astype(wide)), rhs.astype(wide))
  return solution.astype(rhs.dtype)


def _check_solver(solver) -> None:
  checks.one_of("solver", solver, SOLVERS)


def stochastic_reconfiguration(
    diag_shift: float = 1e-3, solver: str = "auto", *, cg_tol: float = 1e-8,
    cg_maxiter: int | None = None) -> optax.GradientTransformationExtraArgs:
  """SR as an optax transformation: gradient -> natural gradient delta.

  Put it first in a chain, e.g.
  `optax.chain(stochastic_reconfiguration(1e-3), optax.sgd(0.05))`: minsr
  reads the local energies from the problem, not the incoming updates, so a
  transformation before it would be ignored.

  `update(gradient, state, params=None, *, sr_problem)` needs the extra
  argument `sr_problem`: an `SRProblem` of the same samples as the
  gradient, or a callable `solver -> SRProblem` (this transformation's
  solver, e.g. for `make_sr_problem(..., solver=solver)`), so that the
  problem is built only when SR is in the chain and only in the form its
  solver uses.

  Args:
    diag_shift: lambda > 0, added to S (see the module docstring).
    solver: one of SOLVERS.
    cg_tol: relative residual tolerance of cg.
    cg_maxiter: iteration cap of cg; None lets jax choose (10 P).
  """
  diag_shift = checks.positive_number("diag_shift", diag_shift)
  _check_solver(solver)
  checks.positive_number("cg_tol", cg_tol)
  checks.optional_positive_int("cg_maxiter", cg_maxiter)

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None, *, sr_problem=None, **extra_args):
    del params, extra_args
    if sr_problem is None:
      raise ValueError(
          "sr_problem must be given to the update of "
          "stochastic_reconfiguration(): an SRProblem or a callable "
          "solver -> SRProblem; got None")
    if callable(sr_problem):
      sr_problem = sr_problem(solver)
    coords = estimators.RealCoordinates(updates)
    force = coords.flatten(updates) / 2
    delta = natural_gradient(sr_problem, force, diag_shift=diag_shift,
                             solver=solver, cg_tol=cg_tol,
                             cg_maxiter=cg_maxiter)
    return coords.unflatten(delta), state

  return optax.GradientTransformationExtraArgs(init, update)

"""The VMC training step: sample, measure, differentiate, update; one jit.

    vmc = make_vmc(model, hamiltonian, make_optimizer("adam", 1e-2),
                   n_samples=1024)
    state = vmc.init(jax.random.key(0))
    state, stats = vmc.step(state)          # one step
    state, history = vmc.run(state, 100)    # 100 steps in one call

Nothing here reads device values: the launcher decides when to look at the
stats (every K steps, say), so JAX can run ahead.

Glossary of shapes:
  n: samples per step, C: samples in one chunk, N: sites, T: steps of a run.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from zoo import checks, sampler, sharding
from zoo.vmc import estimators
from zoo.vmc import local_energy
from zoo.vmc import spring as spring_lib
from zoo.vmc import sr as sr_lib

# Each maps (learning_rate, **optimizer_kwargs) to an optax optimizer.
OPTIMIZERS: Mapping[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adabelief": optax.adabelief,
}

# Learning-rate schedules by name. Each maps (lr, steps, final_fraction,
# warmup_steps) to an optax schedule that starts at (or, after a warmup from
# 0, peaks at) lr and ends at lr * final_fraction after `steps` steps.
SCHEDULES: Mapping[str, Callable[..., optax.Schedule]] = {
    "constant": lambda lr, steps, final, warmup: optax.constant_schedule(lr),
    "cosine": lambda lr, steps, final, warmup: optax.cosine_decay_schedule(
        lr, steps, alpha=final),
    "linear": lambda lr, steps, final, warmup: optax.linear_schedule(
        lr, lr * final, steps),
    "exponential": lambda lr, steps, final, warmup: optax.exponential_decay(
        lr, steps, final),
    "warmup_cosine": lambda lr, steps, final, warmup: (
        optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps,
                                           lr * final)),
}


class SRConfig(NamedTuple):
  """Settings of the natural-gradient step before the optimizer.

  method: a name of PRECONDITIONERS: "sr" (`zoo.vmc.sr.
  stochastic_reconfiguration`, with all the fields but decay) or "spring"
  (`zoo.vmc.spring.spring`: diag_shift, decay, solver auto | minsr).
  decay: SPRING's mu, the weight of the previous direction (0: minSR);
  must be 0 for "sr".
  """
  diag_shift: float = 1e-3
  solver: str = "auto"
  cg_tol: float = 1e-8
  cg_maxiter: int | None = None
  method: str = "sr"
  decay: float = 0.0


def _sr_transform(settings: SRConfig) -> optax.GradientTransformationExtraArgs:
  if settings.decay != 0:
    raise checks.FieldError("decay", settings.decay,
                            "must be 0 for method='sr' (the decay is "
                            "SPRING's: method='spring')")
  return sr_lib.stochastic_reconfiguration(
      settings.diag_shift, settings.solver, cg_tol=settings.cg_tol,
      cg_maxiter=settings.cg_maxiter)


def _spring_transform(settings: SRConfig
                      ) -> optax.GradientTransformationExtraArgs:
  return spring_lib.spring(settings.diag_shift, settings.decay,
                           settings.solver)


# Natural-gradient transformations by `SRConfig.method`: each maps the
# settings to the optax transformation that turns the energy gradient into
# the direction the optimizer scales.
PRECONDITIONERS: Mapping[str, Callable[[SRConfig],
                                       optax.GradientTransformation]] = {
    "sr": _sr_transform,
    "spring": _spring_transform,
}

# Where `make_optimizer` clips by global norm (Pascanu et al. 2012,
# arXiv:1211.5063): "gradient", what enters the optimizer (the energy
# gradient, or with SR or SPRING their direction); "update", the parameter
# step the optimizer returns.
CLIP_AT = ("gradient", "update")


class TrainState(NamedTuple):
  """Everything a VMC run carries from one step to the next.

  Attributes:
    params: the variational parameters.
    opt_state: the optimizer's state.
    key: the random key of the next step's samples.
    step: [] int32, steps done.
  """
  params: Any
  opt_state: Any
  key: jax.Array
  step: jax.Array


class StepStats(NamedTuple):
  """Scalars of one step, measured before its update.

  Attributes:
    energy: mean local energy.
    error: its standard error, sqrt(variance / n).
    variance: variance of the local energy.
    grad_norm: Euclidean norm of the gradient (real coordinates): of the
      energy, or of the free energy while annealing.
    update_norm: Euclidean norm of the parameter update.
    entropy: S = -<log p(x)> of the samples, p = |psi|^machine_pow (exact
      per sample for an autoregressive model).
    temperature: T of the free energy <E> - T S the step lowered (0 when
      not annealing).
  """
  energy: jax.Array
  error: jax.Array
  variance: jax.Array
  grad_norm: jax.Array
  update_norm: jax.Array
  entropy: jax.Array
  temperature: jax.Array


class VMC(NamedTuple):
  """Jitted functions of a VMC run (see the module docstring).

  `put(state)` places a state read from host memory (e.g. a checkpoint) the
  way `init` does: replicated over the mesh, or on the default device.
  """
  init: Callable[[jax.Array], TrainState]
  step: Callable[[TrainState], tuple[TrainState, StepStats]]
  run: Callable[..., tuple[TrainState, StepStats]]  # (state, n[, length])
  put: Callable[[TrainState], TrainState]


def _as_dict(name: str, value) -> dict[str, Any]:
  if value is None:
    return {}
  if hasattr(value, "to_dict"):  # ml_collections.ConfigDict
    value = value.to_dict()
  if hasattr(value, "_asdict"):  # NamedTuple
    value = value._asdict()
  if not isinstance(value, Mapping):
    raise checks.FieldError(name, value, "must be a mapping or None")
  return dict(value)


def make_temperature(initial: float, steps: int) -> Callable[[jax.Array], jax.Array]:
  """step -> T of variational annealing (Hibat-Allah et al. 2021,
  arXiv:2101.10154): `initial` at step 0, linearly down to 0 at `steps`,
  then 0. initial = 0 turns annealing off."""
  initial = checks.non_negative_number("temperature", initial)
  steps = checks.non_negative_int("annealing_steps", steps)
  if initial and not steps:
    raise checks.FieldError("annealing_steps", steps,
                            "must be a positive integer when temperature > 0")

  def temperature(step):
    step = jnp.asarray(step, jnp.result_type(float))
    if not initial:
      return jnp.zeros_like(step)
    return initial * jnp.clip(1 - step / steps, 0, 1)

  return temperature


def make_schedule(name: str, learning_rate: float, *, steps: int | None = None,
                  final_lr_fraction: float = 0.0,
                  warmup_steps: int = 0) -> optax.Schedule:
  """A learning-rate schedule of SCHEDULES: step -> rate.

  Args:
    name: one of SCHEDULES.
    learning_rate: the initial value, or the peak after a warmup.
    steps: the steps over which the rate decays (not for "constant").
    final_lr_fraction: the rate after `steps`, as a fraction of
      learning_rate.
    warmup_steps: warmup_cosine: the linear warmup from 0.
  """
  checks.one_of("schedule", name, SCHEDULES)
  rate = checks.positive_number("learning_rate", learning_rate)
  final = checks.fraction("final_lr_fraction", final_lr_fraction)
  warmup = checks.non_negative_int("warmup_steps", warmup_steps)
  if name != "constant":
    steps = checks.positive_int("steps", steps)
    if warmup > steps:
      raise checks.FieldError("warmup_steps", warmup,
                              f"must be at most steps={steps}")
  return SCHEDULES[name](rate, steps, final, warmup)


class BudgetSchedule(NamedTuple):
  """A learning rate over a wall-clock budget: (step, elapsed_s) -> rate.

  `schedule` (over `steps` steps, `make_schedule`) is read at
  max(step, steps * elapsed_s / budget_s): its progress is the larger of
  the steps' and the budget's fractions, so it reaches its end value at
  whichever end of the run comes first.
  """
  schedule: optax.Schedule
  steps: int
  budget_s: float

  def __call__(self, step, elapsed_s=0.0):
    step = jnp.asarray(step, jnp.result_type(float))
    return self.schedule(jnp.maximum(
        step, self.steps * jnp.asarray(elapsed_s) / self.budget_s))


class ElapsedState(NamedTuple):
  """The state of `scale_by_budget_schedule`.

  Attributes:
    count: [] int32, steps taken.
    elapsed_s: [] seconds of training (over all invocations of a resumed
      run) when the current read of steps began: the launcher sets it
      (`set_elapsed`), and a checkpoint, which holds the optimizer state,
      keeps it.
  """
  count: jax.Array
  elapsed_s: jax.Array


def scale_by_budget_schedule(rate: BudgetSchedule
                             ) -> optax.GradientTransformation:
  """Multiplies the updates by rate(count, elapsed_s) (`ElapsedState`)."""

  def init(params):
    real = jnp.finfo(estimators.real_dtype_of(params)).dtype
    return ElapsedState(count=jnp.zeros((), jnp.int32),
                        elapsed_s=jnp.zeros((), real))

  def update(updates, state, params=None):
    del params
    factor = rate(state.count, state.elapsed_s)
    updates = jax.tree.map(lambda u: (factor * u).astype(u.dtype), updates)
    return updates, state._replace(count=state.count + 1)

  return optax.GradientTransformation(init, update)


def set_elapsed(opt_state, seconds: float):
  """The optimizer state with `ElapsedState.elapsed_s` set to `seconds`
  (unchanged without a budget schedule)."""
  if elapsed_seconds(opt_state) is None:
    return opt_state
  dtype = optax.tree.get(opt_state, "elapsed_s").dtype
  return optax.tree.set(opt_state, elapsed_s=jnp.asarray(seconds, dtype))


def elapsed_seconds(opt_state) -> jax.Array | None:
  """`ElapsedState.elapsed_s` of an optimizer state, or None without a
  budget schedule."""
  try:
    return optax.tree.get(opt_state, "elapsed_s")
  except KeyError:
    return None


def make_optimizer(name: str = "sgd",
                   learning_rate: float | optax.Schedule = 1e-2, *,
                   optimizer_kwargs: Mapping[str, Any] | None = None,
                   sr: SRConfig | Mapping[str, Any] | None = None,
                   clip_norm: float = 0.0, clip: str = "gradient"
                   ) -> optax.GradientTransformationExtraArgs:
  """An optax optimizer by name, optionally after SR or SPRING, clipped.

  The chain: the preconditioner of `sr` (if any), clipping at "gradient",
  the optimizer, clipping at "update". E.g. name="adam" with sr=None is
  Adam on the energy gradient; with sr={} it is Adam on SR's direction.

  Args:
    name: one of OPTIMIZERS.
    learning_rate: the step size, a schedule (`make_schedule`), or a
      `BudgetSchedule` (the optimizer at rate 1, then
      `scale_by_budget_schedule`).
    optimizer_kwargs: passed to the optax optimizer, e.g. b1 or momentum.
    sr: None for plain gradients, else `SRConfig` fields (a mapping works):
      the gradient goes through PRECONDITIONERS[method] before the
      optimizer.
    clip_norm: > 0 clips by global norm (`optax.clip_by_global_norm`) at
      `clip`; 0: no clipping.
    clip: one of CLIP_AT.

  Returns:
    `optax.chain(...)`; its update takes the extra argument `sr_problem`
    when SR is on (`make_vmc` passes it).
  """
  checks.one_of("name", name, OPTIMIZERS)
  rate = (learning_rate if callable(learning_rate)
          else checks.positive_number("learning_rate", learning_rate))
  timed = isinstance(rate, BudgetSchedule)
  optimizer_kwargs = _as_dict("optimizer_kwargs", optimizer_kwargs)
  try:
    # Every optimizer of the table ends in its rate's scaling, so rate 1
    # then the budget's rate is the optimizer at that rate.
    optimizer = OPTIMIZERS[name](1.0 if timed else rate, **optimizer_kwargs)
  except TypeError as e:
    raise checks.FieldError("optimizer_kwargs", optimizer_kwargs,
                            f"do not fit optimizer {name!r}: {e}") from e
  if timed:
    optimizer = optax.chain(optimizer, scale_by_budget_schedule(rate))
  clip_norm = checks.non_negative_number("clip_norm", clip_norm)
  checks.one_of("clip", clip, CLIP_AT)
  clipping = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
  chain = ([] if clip != "gradient" else clipping) + [optimizer] + (
      [] if clip != "update" else clipping)
  if sr is None:
    return optax.chain(*chain)
  sr_fields = _as_dict("sr", sr)
  checks.known_fields(sr_fields, SRConfig._fields)
  with checks.in_section("sr"):
    settings = SRConfig(**sr_fields)
    checks.one_of("method", settings.method, PRECONDITIONERS)
    preconditioner = PRECONDITIONERS[settings.method](settings)
  return optax.chain(preconditioner, *chain)


def _tree_norm(tree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(jnp.abs(leaf)**2)
                      for leaf in jax.tree.leaves(tree)))


def make_vmc(model, hamiltonian, optimizer: optax.GradientTransformation, *,
             n_samples: int, chunk_size: int | None = None,
             temperature: Callable[[jax.Array], jax.Array] | None = None,
             jacobian_batch: int | None = None,
             mesh: jax.sharding.Mesh | None = None) -> VMC:
  """Jitted init / step / run for a model, a Hamiltonian and an optimizer.

  Args:
    model: a `zoo.Wavefunction` on the Hamiltonian's Hilbert space.
    hamiltonian: a `zoo.physics` Hamiltonian.
    optimizer: e.g. from `make_optimizer`; an SR transformation in it gets
      its `sr_problem` from the step's samples.
    n_samples: n, exact samples per step.
    chunk_size: at most this many samples at once through the sampler, the
      local energy, the gradient and the matrix-free SR products; bounds
      memory. None: all at once, but the local energy, which takes M
      connected configurations per sample, in passes of about
      `zoo.physics.hamiltonians.CONFIGS_PER_PASS` (faster on CPU).
    temperature: step -> T (`make_temperature`): each step then lowers the
      free energy <E> - T S, S = -<log p> the autoregressive entropy
      (variational annealing, Hibat-Allah et al. 2021, arXiv:2101.10154);
      its gradient is the energy's with E_loc(x) + T log p(x) in place of
      E_loc(x). None: the energy alone.
    jacobian_batch: for a model without a layer probe
      (`zoo.Wavefunction.layer_probe`), samples whose reverse passes run at
      once when a dense SR jacobian is built; None:
      `zoo.vmc.sr.JACOBIAN_BATCH`.
    mesh: a batch mesh (`zoo.sharding.batch_mesh`): samples, local energies
      and per-sample gradients stay on their device, energies and gradients
      are reduced across devices; parameters are replicated. `n_samples`
      (and `chunk_size`) must divide evenly over its devices, and
      `chunk_size` then counts samples per device in the local energy and
      the gradient. The samples, hence the trajectory, do not depend on it.

  Returns:
    `VMC(init, step, run)`: `init(key) -> TrainState`, `step(state) ->
    (state, StepStats)`, `run(state, n_steps) -> (state, StepStats of [T])`.
  """
  # A model may hold one sector of the Hamiltonian's space (Hilbert.total)
  # when the Hamiltonian keeps its configurations there.
  with checks.in_section("model"):
    hamiltonian.check_space(model.hilbert)
  n_samples = checks.positive_int("n_samples", n_samples)
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  if jacobian_batch is None:
    jacobian_batch = sr_lib.JACOBIAN_BATCH
  jacobian_batch = checks.positive_int("jacobian_batch", jacobian_batch)
  # A plain optax optimizer would reject the sr_problem argument.
  optimizer = optax.with_extra_args_support(optimizer)

  if mesh is not None and mesh.devices.size == 1:
    mesh = None
  sample_chunk = sampler.chunk_for(
      n_samples, None if chunk_size is None else chunk_size * (
          1 if mesh is None else mesh.devices.size), mesh, model=model)

  def draw(params, key) -> tuple[jax.Array, jax.Array]:  # [n, N], [n]
    return sampler.draw(model, params, key, n_samples, sample_chunk, mesh)

  local_energies = functools.partial(local_energy.local_energies, model,
                                     hamiltonian, chunk_size=chunk_size)

  # With a mesh, the state (and the stats) live replicated on all its devices,
  # which every process can read, also under jax.distributed.
  jit = jax.jit if mesh is None else functools.partial(
      jax.jit, out_shardings=sharding.replicated(mesh))

  def put(state: TrainState) -> TrainState:
    if mesh is None:
      return jax.tree.map(jnp.asarray, state)
    return jax.device_put(state, sharding.replicated(mesh))

  @jit
  def init(key: jax.Array, params=None) -> TrainState:
    init_key, key = jax.random.split(key)
    if params is None:
      params, _ = model.init(init_key)
    return TrainState(params=params, opt_state=optimizer.init(params),
                      key=key, step=jnp.zeros((), jnp.int32))

  def step(state: TrainState) -> tuple[TrainState, StepStats]:
    key, sample_key = jax.random.split(state.key)
    params = state.params
    x, log_prob = jax.lax.stop_gradient(draw(params, sample_key))
    t = (jnp.zeros((), log_prob.dtype) if temperature is None
         else temperature(state.step).astype(log_prob.dtype))
    shift = None if temperature is None else t * log_prob  # T log p(x)
    if mesh is None:
      estimate = estimators.expect_and_grad(
          model.log_psi, hamiltonian, params, x, chunk_size=chunk_size,
          local_energy_fn=local_energies, shift=shift)
    else:
      estimate = estimators.expect_and_grad_sharded(
          model.log_psi, hamiltonian, params, x, mesh, chunk_size=chunk_size,
          local_energy_fn=local_energies, shift=shift)
    local = estimate.local_energies if shift is None else (
        estimate.local_energies + shift)

    problems = {}

    def sr_problem(solver: str) -> sr_lib.SRProblem:
      if solver not in problems:  # one problem per solver in a step
        problems[solver] = sr_lib.make_sr_problem(
            model.log_psi, params, x, local,
            chunk_size=chunk_size, jacobian_batch=jacobian_batch,
            solver=solver, live=model.live_parameters(),
            probe=model.layer_probe())
      return problems[solver]

    updates, opt_state = optimizer.update(
        estimate.gradient, state.opt_state, params, sr_problem=sr_problem)
    params = optax.apply_updates(params, updates)
    # The gradient's norm from SR's A where the step built it: minSR reads
    # only A and the local energies, so the gradient's own reverse pass is
    # then never run (XLA drops what nothing reads).
    gradient = next((g for g in (sr_lib.energy_gradient(p, state.params)
                                 for p in problems.values())
                     if g is not None), estimate.gradient)
    stats = StepStats(
        energy=estimate.stats.mean, error=estimate.stats.error,
        variance=estimate.stats.variance,
        grad_norm=_tree_norm(gradient),
        update_norm=_tree_norm(updates), entropy=-jnp.mean(log_prob),
        temperature=t)
    return TrainState(params=params, opt_state=opt_state, key=key,
                      step=state.step + 1), stats

  @functools.partial(jit, static_argnums=2)
  def run_within(state: TrainState, n_steps: jax.Array, length: int):
    def one(i, carry):
      s, rows = carry
      s, stats = step(s)
      return s, jax.tree.map(lambda r, v: r.at[i].set(v), rows, stats)

    rows = jax.tree.map(lambda a: jnp.zeros((length,) + a.shape, a.dtype),
                        jax.eval_shape(step, state)[1])
    return jax.lax.fori_loop(0, n_steps, one, (state, rows))

  def run(state: TrainState, n_steps: int, length: int | None = None
          ) -> tuple[TrainState, StepStats]:
    """n_steps steps in one call; stats [n_steps]. With `length`, any
    n_steps <= length runs in one program compiled once for that length
    (a loop of n_steps steps): stats [length], zeros past n_steps."""
    checks.positive_int("n_steps", n_steps)
    length = n_steps if length is None else length
    if n_steps > checks.positive_int("length", length):
      raise checks.FieldError("n_steps", n_steps,
                              f"must be at most length={length}")
    return run_within(state, n_steps, length)

  return VMC(init=init, step=jit(step), run=run, put=put)


def make_evaluate(model, hamiltonian, n_samples: int, *,
                  chunk_size: int | None = None,
                  mesh: jax.sharding.Mesh | None = None
                  ) -> Callable[[Any, jax.Array], estimators.EnergyStats]:
  """Jitted `evaluate(params, key) -> EnergyStats` of n fresh exact samples.

  No gradients: the energy of a trained state, from its own key. `chunk_size`
  and `mesh` as in `make_vmc`.
  """
  with checks.in_section("model"):
    hamiltonian.check_space(model.hilbert)
  n_samples = checks.positive_int("n_samples", n_samples)
  chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
  if mesh is not None and mesh.devices.size == 1:
    mesh = None
  devices = 1 if mesh is None else mesh.devices.size
  chunk = sampler.chunk_for(
      n_samples, None if chunk_size is None else chunk_size * devices, mesh,
      model=model)

  @jax.jit
  def evaluate(params, key) -> estimators.EnergyStats:
    x, _ = sampler.draw(model, params, key, n_samples, chunk, mesh)
    return estimators.energy_stats(local_energy.local_energies(
        model, hamiltonian, params, x, chunk_size=chunk_size))

  return evaluate

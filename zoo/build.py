"""From a config to running objects: pure functions of its sections.

    cfg = zoo.registry.get_config("tfim_chain_fast_dense")
    model = build.model(cfg)                 # lattice + hilbert + model
    run = build.experiment(cfg)              # ... + hamiltonian, optimizer, vmc
    state, stats = run.vmc.run(run.vmc.init(jax.random.key(0)), 10)

Each builder reads the sections it names and checks every field it reads;
a bad value raises a `zoo.checks.FieldError` that names its config path
(`vmc.n_samples=0: must be a positive integer`). The library checks its own
arguments; `checks.in_section` puts the section in front.

Sections (the fields `configs/base.py` and `configs/experiments.py` set and
comment):
  lattice:     shape ((N,) or (Lx, Ly), raster order), pbc.
  hilbert:     kind (`zoo.hilbert.KINDS`), n_max, local_states, total (None,
               or the sector: the sum of the local-state values).
  model:       family (`zoo.models.FAMILIES`), fast, and the family's fields
               (`zoo.models.FIELDS`), as plain data.
  hamiltonian: kind (`zoo.physics.hamiltonians.KINDS`) and its couplings.
  optimizer:   name, learning_rate, schedule, warmup_steps,
               final_lr_fraction, clip_norm and clip (clipping by global
               norm, 0: off), sr (enabled, method (sr | spring),
               diag_shift, solver, decay).
  vmc:         steps, n_samples, chunk_size (0: all), seed, eval_samples,
               temperature and annealing_steps (variational annealing: T
               from temperature down to 0 over annealing_steps; 0: off),
               budget (a wall-clock duration, "30m", or "": none).

One lattice and one Hilbert space serve both the model and the Hamiltonian.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import optax

from zoo import checks
from zoo import hilbert as hilbert_lib
from zoo import models
from zoo import transfer
from zoo import vmc as vmc_lib
from zoo.models import symmetric
from zoo.physics import hamiltonians
from zoo.physics import lattice as lattice_lib

LATTICE_FIELDS = ("shape", "pbc")
HILBERT_FIELDS = ("kind", "n_max", "local_states", "total")
OPTIMIZER_FIELDS = ("name", "learning_rate", "schedule", "warmup_steps",
                    "final_lr_fraction", "clip_norm", "clip", "sr")
SR_FIELDS = ("enabled", "method", "diag_shift", "solver", "decay")
# What a field the config lacks means (configs written before it existed):
# its value here, which leaves the chain as it was without it.
FIELD_DEFAULTS = {"optimizer.clip_norm": 0.0, "optimizer.clip": "gradient",
                  "optimizer.sr.method": "sr", "optimizer.sr.decay": 0.0,
                  "vmc.budget": ""}
VMC_FIELDS = ("steps", "n_samples", "chunk_size", "seed", "eval_samples",
              "temperature", "annealing_steps", "budget")


def _section(cfg, name: str):
  """The section `name` of a config."""
  section = cfg.get(name) if hasattr(cfg, "get") else None
  if not hasattr(section, "items"):
    fields = sorted(cfg) if hasattr(cfg, "keys") else type(cfg).__name__
    raise checks.FieldError(
        name, section,
        f"must be a config section; the config has the fields {fields}")
  return section


def lattice(cfg) -> lattice_lib.Lattice:
  """The lattice of the `lattice` section."""
  section = _section(cfg, "lattice")
  with checks.in_section("lattice"):
    checks.known_fields(section, LATTICE_FIELDS)
    return lattice_lib.Lattice(section.get("shape"), section.get("pbc", True))


def hilbert(cfg) -> hilbert_lib.Hilbert:
  """The Hilbert space of the `hilbert` section on the config's lattice."""
  shape = lattice(cfg).shape
  section = _section(cfg, "hilbert")
  with checks.in_section("hilbert"):
    checks.known_fields(section, HILBERT_FIELDS)
    return hilbert_lib.of_kind(
        section.get("kind"), shape, n_max=section.get("n_max"),
        local_states=section.get("local_states"), total=section.get("total"))


def model(cfg) -> models.Wavefunction:
  """The model of the `model` section on the config's Hilbert space; a
  family that reads the boundary (`pbc`) gets the lattice's, and
  `symmetries` (names of `zoo.models.symmetric`) symmetrizes it."""
  space = hilbert(cfg)
  on = lattice(cfg)
  section = _section(cfg, "model")
  with checks.in_section("model"):
    family = checks.one_of("family", section.get("family"), models.FAMILIES)
    takes = models.FAMILY_FIELDS[family]
    checks.known_fields(section, ("family", "fast", "symmetries") + tuple(
        f for f in takes if f != "pbc"))
    fast = checks.boolean("fast", section.get("fast", False))
    fields = {k: v for k, v in section.items()
              if k not in ("family", "fast", "symmetries")}
    if "pbc" in takes:
      fields["pbc"] = on.pbc
    wavefunction = models.CONSTRUCTORS[family][fast](space, **fields)
    names = section.get("symmetries") or ""
    if not isinstance(names, str):
      raise checks.FieldError("symmetries", names,
                              "must be a string of symmetry names")
    if names:
      wavefunction = symmetric.Symmetrized(
          wavefunction, symmetric.symmetry_group(names, space, on.pbc))
    return wavefunction


def hamiltonian(cfg) -> hamiltonians.SpinHalfHamiltonian:
  """The Hamiltonian of the `hamiltonian` section on the config's lattice."""
  on = lattice(cfg)
  section = _section(cfg, "hamiltonian")
  with checks.in_section("hamiltonian"):
    kind = checks.one_of("kind", section.get("kind"), hamiltonians.KINDS)
    couplings = {k: v for k, v in section.items() if k != "kind"}
    checks.known_fields(couplings, hamiltonians.coupling_fields(kind))
    return hamiltonians.KINDS[kind](on, **couplings)


def learning_rate(cfg) -> optax.Schedule | vmc_lib.BudgetSchedule:
  """The rate schedule of the `optimizer` section, over `vmc.steps` steps,
  or with `vmc.budget` a `zoo.vmc.BudgetSchedule` over the budget (or the
  steps, whichever ends first)."""
  fields = _vmc_fields(cfg)
  section = _section(cfg, "optimizer")
  with checks.in_section("optimizer"):
    checks.known_fields(section, OPTIMIZER_FIELDS)
    schedule = vmc_lib.make_schedule(
        section.get("schedule", "constant"), section.get("learning_rate"),
        steps=max(fields["steps"], 1),  # 0 steps: an evaluation only
        final_lr_fraction=section.get("final_lr_fraction", 0.0),
        warmup_steps=section.get("warmup_steps", 0))
  if fields["budget_s"] is None:
    return schedule
  return vmc_lib.BudgetSchedule(schedule, fields["steps"], fields["budget_s"])


def optimizer(cfg) -> optax.GradientTransformationExtraArgs:
  """The optax optimizer (after SR, if enabled) of the `optimizer` section."""
  schedule = learning_rate(cfg)
  section = _section(cfg, "optimizer")
  sr = _section(section, "sr") if "sr" in section else {"enabled": False}
  with checks.in_section("optimizer.sr"):
    checks.known_fields(sr, SR_FIELDS)
    enabled = checks.boolean("enabled", sr.get("enabled"))
  with checks.in_section("optimizer"):
    return vmc_lib.make_optimizer(
        section.get("name", "sgd"), schedule,
        sr={k: v for k, v in sr.items() if k != "enabled"} if enabled
        else None,
        clip_norm=section.get("clip_norm",
                              FIELD_DEFAULTS["optimizer.clip_norm"]),
        clip=section.get("clip", FIELD_DEFAULTS["optimizer.clip"]))


def _vmc_fields(cfg) -> dict[str, Any]:
  """The checked fields of the `vmc` section (chunk_size 0 -> None)."""
  section = _section(cfg, "vmc")
  with checks.in_section("vmc"):
    checks.known_fields(section, VMC_FIELDS)
    return dict(
        steps=checks.non_negative_int("steps", section.get("steps")),
        n_samples=checks.positive_int("n_samples", section.get("n_samples")),
        chunk_size=checks.non_negative_int(
            "chunk_size", section.get("chunk_size", 0)) or None,
        seed=checks.non_negative_int("seed", section.get("seed", 0)),
        eval_samples=checks.positive_int("eval_samples",
                                         section.get("eval_samples")),
        temperature=vmc_lib.make_temperature(
            section.get("temperature", 0.0),
            section.get("annealing_steps", 0)),
        annealing=bool(section.get("temperature", 0.0)),
        budget_s=checks.duration("budget", section.get("budget", "")))


class Experiment(NamedTuple):
  """The running objects of an experiment config (see `experiment`).

  Attributes:
    hamiltonian: on the config's lattice.
    model: a `Wavefunction` on the config's Hilbert space (the Hamiltonian's,
      or one sector of it).
    learning_rate: step -> the optimizer's rate; with a budget
      (step, elapsed_s) -> rate (`zoo.vmc.BudgetSchedule`).
    vmc: `zoo.vmc.VMC`: init / step / run / put.
    evaluate: (params, key) -> `EnergyStats` of `vmc.eval_samples` fresh
      samples.
    seed: `vmc.seed`, of the parameters and the samples.
    steps: `vmc.steps`.
    budget_s: `vmc.budget` in seconds, or None.
    initial_params: the parameters to start from (`source`), or None for
      the model's initialization; `vmc.init(key, initial_params)`.
  """
  hamiltonian: hamiltonians.SpinHalfHamiltonian
  model: models.Wavefunction
  learning_rate: optax.Schedule
  vmc: vmc_lib.VMC
  evaluate: Callable[..., vmc_lib.EnergyStats]
  seed: int
  steps: int
  initial_params: Any = None
  budget_s: float | None = None


def experiment(cfg, mesh: jax.sharding.Mesh | None = None,
               source: transfer.Source | None = None) -> Experiment:
  """Checks an experiment config and builds its pieces (nothing runs).

  `mesh` (a `zoo.sharding.batch_mesh`) shards the samples over its devices;
  `source` (`zoo.transfer`) gives parameters to start from, checked against
  the model.
  """
  fields = _vmc_fields(cfg)
  ham = hamiltonian(cfg)
  space = hilbert(cfg)
  if cfg.hilbert.kind != "spin_half":
    raise checks.FieldError(
        "hilbert.kind", cfg.hilbert.kind,
        f"must be 'spin_half': hamiltonian.kind={cfg.hamiltonian.kind!r} acts "
        "on spins 1/2")
  ham.check_space(space)
  wavefunction = model(cfg)
  opt = optimizer(cfg)  # its errors name `optimizer.`, not `vmc.optimizer.`
  with checks.in_section("vmc"):
    run = vmc_lib.make_vmc(
        wavefunction, ham, opt, n_samples=fields["n_samples"],
        chunk_size=fields["chunk_size"], mesh=mesh,
        temperature=fields["temperature"] if fields["annealing"] else None)
    evaluate = vmc_lib.make_evaluate(
        wavefunction, ham, fields["eval_samples"],
        chunk_size=fields["chunk_size"], mesh=mesh)
  initial = None if source is None else transfer.params_for(source,
                                                            wavefunction)
  return Experiment(hamiltonian=ham, model=wavefunction,
                    learning_rate=learning_rate(cfg), vmc=run,
                    evaluate=evaluate, seed=fields["seed"],
                    steps=fields["steps"], initial_params=initial,
                    budget_s=fields["budget_s"])

"""VMC experiments: a lattice, a model, a Hamiltonian, an optimizer and a run.

Launch: `python -m experiments.vmc --config=heisenberg_chain_fast_conv1d`,
`--config=j1j2_square_fast_conv2d:steps=2000,lr=0.02` or
`--config=configs/experiments.py:experiment=tfim_square_fast_conv2d,tiny=True`,
then any `--config.section.field=value` override.

Sections (every field is commented where it is set, in `base_config`; the
library reads all but `log`, see `zoo.build`):
  lattice: shape and boundary, read by both the model and the Hamiltonian.
  hilbert: spin-1/2 sites, and the sector (`total`) the model is restricted
    to.
  model: the model section of a built-in variant (`configs.families`).
  hamiltonian: kind (tfim | heisenberg | j1j2) and its couplings.
  optimizer: optax optimizer, learning rate and schedule, SR settings.
  vmc: steps, samples per step, chunking, seed, final evaluation samples.
  log: progress every K steps, checkpoint cadence, checkpoints kept.

Arguments (`key=value,...`; see `zoo.config_tools.parse_arg`), the same for
every experiment, with defaults from its row of `EXPERIMENTS`:
  L: sites of the chain, or the side of the L x L lattice.
  steps: VMC steps.
  samples: exact samples per step.
  lr: learning rate (the peak value of a schedule).
  schedule: the learning rate schedule, a name of `zoo.vmc.SCHEDULES`
    (constant, cosine, warmup_cosine, ...); a decaying one spans `steps`,
    so a longer run is a new trajectory, not a continuation.
  final_lr_fraction: the final rate of a decaying schedule, as a fraction of
    lr.
  diag_shift: SR diagonal shift.
  seed: the seed of parameters and samples.
  temperature, annealing_steps: variational annealing (off at 0).
  eval_samples: fresh samples of the final energy (0: 4 x samples, at least
    EVAL_SAMPLES).
  init: a workdir or pretrained:NAME to start the parameters from.
  tiny: shrink to a few sites, features, samples and steps (tests, smoke
    runs); the lattice becomes 6 sites or 2 x 2.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import families
from zoo import config_tools

# Sizes of a tiny run (`tiny=True`): quick to compile and run on a CPU.
TINY_L = 6  # chain sites
TINY_L_2D = 2  # 2 x 2; bipartite with periodic boundaries (3 x 3 is not)
TINY_STEPS = 6
TINY_SAMPLES = 32

# The least samples of the final evaluation (but tiny runs), so that its
# error bar resolves a relative error of 1e-4 on the default system.
EVAL_SAMPLES = 65536

# Registered names -> what each sets: `model`, a built-in model variant spec
# (`configs.families`; its lattice is the experiment's); `hamiltonian`, its
# kind and couplings (`zoo.physics.hamiltonians`); `lattice` (optional,
# LATTICES) "chain" (L sites, the default) or "square" (L x L); `total`
# (optional) the sector of the model and its samples, the sum of sigma_z
# (0: S^z = 0; `--config.hilbert.total=None` lifts it); `pbc` (optional,
# default True) False for open boundaries; the other keys are
# argument defaults. docs/benchmarks.md ("Energies") holds what each row
# measured.
EXPERIMENTS = {
    # The critical transverse-field Ising chain with a weight-shared model.
    "tfim_chain_fast_conv1d": dict(
        model="fast_arnn_conv1d_dilated:features=8",
        hamiltonian=dict(kind="tfim", J=1.0, h=1.0),
        L=20, steps=300, samples=512, lr=0.05, diag_shift=1e-3),
    "heisenberg_chain_fast_conv1d": dict(
        model="fast_arnn_conv1d_dilated",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=20, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    "heisenberg_square_fast_conv2d": dict(
        model="fast_arnn_conv2d", lattice="square",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # h = 3.04: close to the critical field of the square lattice TFIM.
    "tfim_square_fast_conv2d": dict(
        model="fast_arnn_conv2d", lattice="square",
        hamiltonian=dict(kind="tfim", J=1.0, h=3.04),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # Frustrated: the Marshall rotation does not fix the signs, so the
    # parameters are complex and learn the phases.
    "j1j2_square_fast_conv2d": dict(
        model="fast_arnn_conv2d:dtype=complex128", lattice="square",
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # Dense rows (no weight sharing): every conditional has weights of its
    # own, so the periodic boundary and the distance from the first site
    # need not be inferred from the zero padding, as the conv rows must.
    # SR with lr 0.1 (minSR: parameters outnumber samples); the rows without
    # a schedule keep it constant, so `:steps=N` in the same workdir
    # continues the trajectory.
    #
    # The default of `python -m experiments.vmc`: about two minutes on two
    # CPU cores. The cosine decay (0.2 to 0.02 over the run) quiets the last
    # steps; it spans `steps`, so a longer run starts afresh (`--overwrite`
    # in an old workdir) rather than continuing a shorter one. lr 0.2 (NetKet's
    # 0.1, see docs/netket.md, "Conventions"): relative errors 9.2e-5 / 8.4e-5 /
    # 1.2e-4 (seeds 0 / 1 / 2) against 2.5e-4 with lr 0.1; lr 0.3 diverged
    # (docs/benchmarks.md, "Time to accuracy against NetKet").
    "tfim_chain_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16",
        hamiltonian=dict(kind="tfim", J=1.0, h=1.0),
        L=20, steps=300, samples=1024, lr=0.2, schedule="cosine",
        diag_shift=1e-3),
    "heisenberg_chain_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=20, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
    # Restricted to S^z = 0, where the ground state lies: the variance falls
    # faster than over the whole space.
    "heisenberg_square_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=32", lattice="square",
        total=0,
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=4, steps=3000, samples=1024, lr=0.1, schedule="cosine",
        diag_shift=1e-4),
    "tfim_square_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16", lattice="square",
        hamiltonian=dict(kind="tfim", J=1.0, h=3.04),
        L=4, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
    # Larger lattices with weight-shared families (docs/benchmarks.md's
    # table says what each reached). A 2D GRU (Hibat-Allah et al. 2020)
    # reading its periodic neighbours, in the S^z = 0 sector.
    "heisenberg_square_6x6": dict(
        model="fast_gru:features=16", lattice="square", total=0,
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=6, steps=1200, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3),
    # The lattices past ED, each run for a short budget (docs/benchmarks.md's
    # table says how long and what it reached; the periodic 10 x 10 starts
    # from the trained 6 x 6 with `init=pretrained:heisenberg_square_6x6`).
    # Open boundaries: the GRU reads the neighbours inside the lattice only.
    "heisenberg_square_10x10_open": dict(
        model="fast_gru:features=16", lattice="square", total=0, pbc=False,
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=10, steps=120, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3, eval_samples=16384),
    "heisenberg_square_10x10": dict(
        model="fast_gru:features=16", lattice="square", total=0,
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=10, steps=120, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3, eval_samples=16384),
    "tfim_square_12x12_open": dict(
        model="fast_gru:features=16", lattice="square", pbc=False,
        hamiltonian=dict(kind="tfim", J=1.0, h=3.0),
        L=12, steps=80, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3, eval_samples=16384),
    # J1-J2 at J2 = 0.5 with a complex GRU (its output layer learns the
    # phases the Marshall rotation leaves), in S^z = 0.
    "j1j2_square_4x4": dict(
        model="fast_gru:dtype=complex128,features=16", lattice="square", total=0,
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=4, steps=300, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3, eval_samples=16384),
    "j1j2_square_6x6": dict(
        model="fast_gru:dtype=complex128,features=16", lattice="square", total=0,
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=6, steps=150, samples=1024, lr=0.05, schedule="cosine",
        diag_shift=1e-3, eval_samples=16384),
    "j1j2_square_fast_dense": dict(
        model="fast_arnn_dense:dtype=complex128,layers=2,features=16", lattice="square",
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=4, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
}

# Staged recipes (`experiments.stages`; `python -m experiments.stages
# --config=NAME` with no --stage runs the row's): each stage the overrides
# of the row it starts from. The plain model at 256 samples a step with
# minSR, then the same weights averaged over the point group and the spin
# flip (16 elements) at a lower rate: symmetries in a last stage, as Moss et
# al. 2025 (arXiv:2502.17144) train their 2D GRUs.
STAGES = {
    "heisenberg_square_6x6": (
        "vmc.n_samples=256 vmc.budget=32m vmc.steps=100000 "
        "vmc.eval_samples=16384 optimizer.sr.solver=minsr",
        "model.symmetries=point_group,spin_flip vmc.n_samples=256 "
        "vmc.budget=20m vmc.steps=100000 vmc.eval_samples=16384 "
        "optimizer.sr.solver=minsr optimizer.learning_rate=0.01"),
    "j1j2_square_4x4": (
        "vmc.n_samples=256 vmc.budget=18m vmc.steps=100000 "
        "vmc.eval_samples=16384 optimizer.sr.solver=minsr",
        "model.symmetries=point_group,spin_flip vmc.n_samples=256 "
        "vmc.budget=10m vmc.steps=100000 vmc.eval_samples=16384 "
        "optimizer.sr.solver=minsr optimizer.learning_rate=0.01"),
}

# The lattice of a row (its optional key `lattice`): L sites or L x L.
LATTICES = ("chain", "square")

DEFAULT = "tfim_chain_fast_dense"  # the launcher's default experiment

# The argument defaults every row of EXPERIMENTS starts from.
ARGS = dict(L=20, steps=300, samples=1024, lr=0.05, schedule="constant",
            final_lr_fraction=0.1, diag_shift=1e-3, seed=0, temperature=0.0,
            annealing_steps=0, eval_samples=0, init="", tiny=False)


def base_config(model: str, hamiltonian: dict, args, lattice: str = "chain",
                total: float | None = None,
                pbc: bool = True) -> config_dict.ConfigDict:
  """An experiment config from a model spec, Hamiltonian fields and arguments.

  Args:
    model: a built-in model variant spec, e.g. "fast_arnn_conv1d_dilated".
    hamiltonian: `kind` and its couplings (`zoo.physics.hamiltonians`).
    args: parsed arguments (see the module docstring).
    lattice: "chain" (L sites) or "square" (L x L).
    total: None, or the sector of the model and its samples (`hilbert.total`).
    pbc: periodic (True) or open (False) boundaries.
  """
  if lattice not in LATTICES:
    raise ValueError(f"lattice={lattice!r} is not one of {LATTICES}")
  size = (TINY_L_2D if lattice == "square" else TINY_L) if args.tiny else args.L
  model_cfg = families.get_config(model + (
      (":" if ":" not in model else ",") + "tiny=True" if args.tiny else ""))
  cfg = config_dict.ConfigDict()

  cfg.lattice = config_tools.section(
      # (N,) chain or (Lx, Ly) lattice, raster order; the model and the
      # Hamiltonian both live on it.
      shape=(size, size) if lattice == "square" else (size,),
      pbc=pbc,  # periodic (True) or open boundaries
  )
  cfg.hilbert = config_tools.section(
      kind="spin_half",  # the Hamiltonians act on spins 1/2
      n_max=None,  # fock only
      local_states=None,  # custom only
      # None, or the sum of sigma_z of the only configurations the model
      # holds and the sampler draws (2 S^z; 0 for the ground state of an
      # antiferromagnet on an even number of sites). Needs an S^z-conserving
      # Hamiltonian (heisenberg, j1j2); the exact energy is that of the
      # sector.
      total=total,
  )
  # The model section of the variant (its fields: configs/base.py).
  cfg.model = model_cfg.model

  cfg.hamiltonian = config_dict.ConfigDict()
  cfg.hamiltonian.kind = hamiltonian["kind"]  # tfim | heisenberg | j1j2
  for field, value in hamiltonian.items():  # Documented in zoo.physics.
    if field != "kind":
      cfg.hamiltonian[field] = value

  cfg.optimizer = config_dict.ConfigDict()
  cfg.optimizer.name = "sgd"  # sgd | adam | adamw | rmsprop | adabelief
  # The step size (with SR: the imaginary-time step), or a schedule's peak.
  cfg.optimizer.learning_rate = args.lr
  # A name of zoo.vmc.SCHEDULES (constant | cosine | warmup_cosine | ...),
  # over vmc.steps.
  cfg.optimizer.schedule = args.schedule
  cfg.optimizer.warmup_steps = 0  # warmup_cosine: linear warmup from 0
  # A decaying schedule's final rate as a fraction of learning_rate.
  cfg.optimizer.final_lr_fraction = args.final_lr_fraction
  # Clip by global norm to this (0: off), at `clip`: "gradient" (what enters
  # the optimizer: the gradient, or SR's or SPRING's direction) | "update"
  # (the parameter step).
  cfg.optimizer.clip_norm = 0.0
  cfg.optimizer.clip = "gradient"
  cfg.optimizer.sr = config_dict.ConfigDict()
  cfg.optimizer.sr.enabled = True  # precondition the gradient with SR
  # A name of zoo.vmc.PRECONDITIONERS: sr | spring (minSR reusing the last
  # direction, Goldshlager et al. 2024, arXiv:2401.10190).
  cfg.optimizer.sr.method = "sr"
  cfg.optimizer.sr.diag_shift = args.diag_shift  # lambda in (S + lambda 1)
  # auto (minsr when samples < parameters, else cholesky) | cholesky | cg |
  # minsr; spring: auto | minsr.
  cfg.optimizer.sr.solver = "auto"
  # spring only: the weight mu in [0, 1) of the last direction (0: minSR).
  cfg.optimizer.sr.decay = 0.0

  cfg.vmc = config_dict.ConfigDict()
  cfg.vmc.steps = TINY_STEPS if args.tiny else args.steps  # VMC steps in all
  # Exact samples per step.
  cfg.vmc.n_samples = TINY_SAMPLES if args.tiny else args.samples
  cfg.vmc.chunk_size = 0  # samples at once through the network; 0: all
  cfg.vmc.seed = args.seed  # parameters and samples
  # Variational annealing: lower <E> - T S, T from `temperature` down to 0
  # over `annealing_steps` steps (0: off).
  cfg.vmc.temperature = args.temperature
  cfg.vmc.annealing_steps = args.annealing_steps
  # A wall-clock budget ("90s", "30m", "2h", "1h30m"; "": none): training
  # ends at it or at `steps`, whichever comes first, with a checkpoint and
  # the final evaluation; the learning-rate schedule runs over it.
  cfg.vmc.budget = ""
  # The final energy: one evaluation with this many fresh samples. Its error
  # bar, sqrt(variance / eval_samples), must be well below the relative
  # error sought.
  cfg.vmc.eval_samples = 4 * cfg.vmc.n_samples
  if not args.tiny:
    cfg.vmc.eval_samples = args.eval_samples or max(cfg.vmc.eval_samples,
                                                    EVAL_SAMPLES)

  cfg.init = config_dict.ConfigDict()
  # Where the parameters start: "" (the model's initialization), a run's
  # workdir (its newest checkpoint) or "pretrained:NAME" (`python -m
  # experiments.catalog pretrained`); the same weight-shared family, so a run
  # can continue on a larger lattice (zoo.transfer).
  cfg.init["from"] = args.init

  cfg.log = config_dict.ConfigDict()
  # Read the stats, log progress and append metrics every K steps (the steps
  # in between run on device in one scan).
  cfg.log.every_k = 2 if args.tiny else 25
  # Save a checkpoint every this many steps (a multiple of every_k), and at
  # the end.
  cfg.log.checkpoint_every = 2 if args.tiny else 100
  cfg.log.keep_checkpoints = 3  # the newest k checkpoints are kept
  return cfg


def get_config_of(name: str, arg: str | None = None) -> config_dict.ConfigDict:
  """The config of the experiment `name` with `key=value` arguments."""
  if name not in EXPERIMENTS:
    raise ValueError(f"experiment={name!r} is not one of "
                     f"{', '.join(EXPERIMENTS)}")
  row = dict(EXPERIMENTS[name])
  layout = {key: row.pop(key) for key in ("model", "hamiltonian", "lattice",
                                          "total", "pbc") if key in row}
  args = config_tools.parse_arg(arg, **{**ARGS, **row})
  return base_config(args=args, **layout)


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  """For launching by path: `experiment=NAME` picks the row (default:
  DEFAULT); the other arguments are those of the registered names."""
  items = [item for item in (arg or "").split(",") if item.strip()]
  chosen = [item for item in items
            if item.partition("=")[0].strip() == "experiment"]
  name = config_tools.parse_arg(",".join(chosen),
                                experiment=DEFAULT).experiment
  rest = ",".join(item for item in items if item not in chosen)
  return get_config_of(name, rest or None)


def _named_get_config(name: str):

  def named_get_config(arg=None):
    return get_config_of(name, arg)

  named_get_config.__qualname__ = named_get_config.__name__ = (
      f"get_config[{name}]")
  named_get_config.__doc__ = f"The experiment {name}; see configs.experiments."
  return named_get_config


# Registered names -> get_config(arg=None), one per row of EXPERIMENTS.
EXPERIMENT_CONFIGS = {name: _named_get_config(name) for name in EXPERIMENTS}

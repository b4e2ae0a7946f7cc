"""VMC experiments: a Hamiltonian, a model by name, an optimizer and a run.

Launch: `python -m experiments.vmc --config=heisenberg_chain_fast_conv1d`,
`--config=j1j2_square_fast_conv2d:steps=2000,lr=0.02` or
`--config=configs/experiments.py:experiment=tfim_square_fast_conv2d,tiny=True`,
then any `--config.section.field=value` override.

Sections (every field is commented where it is set, in `base_config`):
  model: a registered model spec (`python -m experiments.zoo list`); its
    lattice is replaced by the Hamiltonian's.
  hamiltonian: kind (tfim | heisenberg | j1j2), lattice shape, boundary,
    couplings and the Marshall sign rotation; only the fields of its kind.
  optimizer: optax optimizer, learning rate and schedule, SR settings.
  vmc: steps, samples per step, chunking, seed, final evaluation samples.
  log: progress every K steps, checkpoint cadence, checkpoints kept.

Arguments (`key=value,...`; see `zoo.registry.parse_arg`), the same for
every experiment, with defaults from its row of `EXPERIMENTS`:
  L: sites of the chain, or the side of the L x L lattice.
  steps: VMC steps.
  samples: exact samples per step.
  lr: learning rate (the peak value of a schedule).
  schedule: the learning rate schedule, constant | cosine | warmup_cosine
    (see `base_config`); a decaying one spans `steps`, so a longer run is a
    new trajectory, not a continuation.
  final_lr_fraction: cosine, warmup_cosine: the final rate as a fraction of
    lr.
  diag_shift: SR diagonal shift.
  seed: the seed of parameters and samples.
  tiny: shrink to a few sites, features, samples and steps (tests, smoke
    runs); the lattice becomes 6 sites or 2 x 2.
"""

from __future__ import annotations

from ml_collections import config_dict

from zoo import registry

# Sizes of a tiny run (`tiny=True`): quick to compile and run on a CPU.
TINY_L = 6  # chain sites
TINY_L_2D = 2  # 2 x 2; bipartite with periodic boundaries (3 x 3 is not)
TINY_STEPS = 6
TINY_SAMPLES = 32

# The least samples of the final evaluation (but tiny runs): about 10 s for
# the 20-site dense model on 2 cores, no gradients.
EVAL_SAMPLES = 65536

# Registered names -> what each sets. `model` is a registered model spec
# (without its lattice size: the Hamiltonian's lattice replaces it);
# `hamiltonian` its kind and couplings; `lattice` (optional, see LATTICES)
# "chain" or "square", by default square for a conv2d model, else chain (a
# dense model on a square lattice takes L * L sites in raster order);
# `total_sz` (optional) the S^z sector of the model and its samples (see
# `cfg.vmc.total_sz`; `--config.vmc.total_sz=None` lifts it); the other keys
# are argument defaults.
EXPERIMENTS = {
    # The critical transverse-field Ising chain; the launcher's default
    # until the dense row below, which gets closer at the same budget.
    "tfim_chain_fast_conv1d": dict(
        model="fast_arnn_conv1d_dilated:features=8",
        hamiltonian=dict(kind="tfim", J=1.0, h=1.0),
        L=20, steps=300, samples=512, lr=0.05, diag_shift=1e-3),
    "heisenberg_chain_fast_conv1d": dict(
        model="fast_arnn_conv1d_dilated",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=20, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    "heisenberg_square_fast_conv2d": dict(
        model="fast_arnn_conv2d",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # h = 3.04: close to the critical field of the square lattice TFIM.
    "tfim_square_fast_conv2d": dict(
        model="fast_arnn_conv2d",
        hamiltonian=dict(kind="tfim", J=1.0, h=3.04),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # Frustrated: the Marshall rotation does not fix the signs, so the
    # parameters are complex and learn the phases.
    "j1j2_square_fast_conv2d": dict(
        model="fast_arnn_conv2d_complex",
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=4, steps=1000, samples=1024, lr=0.05, diag_shift=1e-3),
    # Dense rows (no weight sharing): every conditional has weights of its
    # own, so the periodic boundary and the distance from the first site
    # need not be inferred from the zero padding as in the conv rows, which
    # stall earlier (the TFIM chain at a variance of ~0.1, rel. err. ~1e-3).
    # Measured figures: the README's results table. lr 0.1 with SR (minSR:
    # parameters outnumber samples); the rows without a schedule keep it
    # constant, so `:steps=N` in the same workdir continues the trajectory.
    #
    # The default of `python -m experiments.vmc`: about two minutes on two
    # CPU cores (300 steps, rel. err. ~2.5e-4). The cosine decay (0.1 to
    # 0.01 over the run) quiets the last steps: `:steps=1500` reaches the
    # issue's 1e-4 (1500 steps at a constant 0.1: 1.1e-4). The decay spans
    # `steps`, so a longer run starts afresh (`--overwrite` in an old
    # workdir) rather than continuing a shorter one.
    "tfim_chain_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16",
        hamiltonian=dict(kind="tfim", J=1.0, h=1.0),
        L=20, steps=300, samples=1024, lr=0.1, schedule="cosine",
        diag_shift=1e-3),
    "heisenberg_chain_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16",
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=20, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
    # 32 features, 3000 cosine-decayed steps, SR shift 1e-4 and the model
    # restricted to S^z = 0: rel. err. 4.4e-4. Over the whole space
    # (`--config.vmc.total_sz=None`): 1.27e-3 (1500 steps with shift 1e-3:
    # 1.8e-3; 16 features, 600 constant steps: 4.1e-3).
    "heisenberg_square_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=32", lattice="square",
        total_sz=0,
        hamiltonian=dict(kind="heisenberg", J=1.0, marshall_sign=True),
        L=4, steps=3000, samples=1024, lr=0.1, schedule="cosine",
        diag_shift=1e-4),
    "tfim_square_fast_dense": dict(
        model="fast_arnn_dense:layers=2,features=16", lattice="square",
        hamiltonian=dict(kind="tfim", J=1.0, h=3.04),
        L=4, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
    "j1j2_square_fast_dense": dict(
        model="fast_arnn_dense_complex:layers=2,features=16", lattice="square",
        hamiltonian=dict(kind="j1j2", J1=1.0, J2=0.5, marshall_sign=True),
        L=4, steps=600, samples=1024, lr=0.1, diag_shift=1e-3),
}

# The lattice of a row (its optional key `lattice`): L sites or L x L.
LATTICES = ("chain", "square")

DEFAULT = "tfim_chain_fast_dense"  # the launcher's default experiment

# The argument defaults every row of EXPERIMENTS starts from.
ARGS = dict(L=20, steps=300, samples=1024, lr=0.05, schedule="constant",
            final_lr_fraction=0.1, diag_shift=1e-3, seed=0, tiny=False)

# The learning rate schedules of the `schedule` argument (`experiments.vmc`
# builds them over `steps`).
SCHEDULES = ("constant", "cosine", "warmup_cosine")

# Hamiltonian kinds and the coupling fields each takes (besides kind, shape
# and pbc); `experiments.vmc.build_hamiltonian` checks them.
HAMILTONIAN_FIELDS = {
    "tfim": ("J", "h"),
    "heisenberg": ("J", "marshall_sign"),
    "j1j2": ("J1", "J2", "marshall_sign"),
}
# What each coupling field means (the comments of the hamiltonian section).
COUPLINGS = {
    "J": "nearest-neighbour coupling (tfim: -J sz sz; heisenberg: J S.S)",
    "h": "transverse field, -h sx on every site (tfim)",
    "J1": "nearest-neighbour coupling J1 S.S (j1j2)",
    "J2": "next-nearest-neighbour (diagonal) coupling J2 S.S (j1j2)",
    # Rotates H by prod_{i in sublattice B} sz_i: the spectrum is unchanged,
    # and the unfrustrated ground state gets positive amplitudes.
    "marshall_sign": "apply the Marshall sign rotation",
}


def base_config(model: str, hamiltonian: dict, args,
                lattice: str | None = None,
                total_sz: float | None = None) -> config_dict.ConfigDict:
  """An experiment config from a model spec, Hamiltonian fields and arguments.

  Args:
    model: a registered model spec, e.g. "fast_arnn_conv1d_dilated".
    hamiltonian: `kind` and its couplings (see HAMILTONIAN_FIELDS).
    args: parsed arguments (see the module docstring).
    lattice: "chain" (L sites) or "square" (L x L); None: square for a
      conv2d model, else chain.
    total_sz: None, or the S^z sector of the model and its samples.
  """
  kind = hamiltonian["kind"]
  if kind not in HAMILTONIAN_FIELDS:
    raise ValueError(f"hamiltonian kind={kind!r} is not one of "
                     f"{tuple(HAMILTONIAN_FIELDS)}")
  conv2d = "conv2d" in model.partition(":")[0]
  if lattice is None:
    lattice = "square" if conv2d else "chain"
  if lattice not in LATTICES:
    raise ValueError(f"lattice={lattice!r} is not one of {LATTICES}")
  if args.schedule not in SCHEDULES:
    raise ValueError(f"schedule={args.schedule!r} is not one of {SCHEDULES}")
  if not 0.0 <= args.final_lr_fraction <= 1.0:
    raise ValueError(f"final_lr_fraction={args.final_lr_fraction!r} must be "
                     "in [0, 1]")
  lattice_2d = lattice == "square"
  size = (TINY_L_2D if lattice_2d else TINY_L) if args.tiny else args.L
  # A model without a 2D lattice (dense) takes the sites, in raster order.
  model_size = size * size if lattice_2d and not conv2d else size
  model_args = ",".join(filter(None, (
      model.partition(":")[2], f"L={model_size}",
      "tiny=True" if args.tiny else "")))
  cfg = config_dict.ConfigDict()

  # A registered model spec, `name:arg`; the launcher builds it on the
  # lattice of hamiltonian.shape (its L only sizes `zoo list` and `describe`).
  cfg.model = f"{model.partition(':')[0]}:{model_args}"

  cfg.hamiltonian = config_dict.ConfigDict()
  cfg.hamiltonian.kind = kind  # tfim | heisenberg | j1j2
  # (N,) chain or (Lx, Ly) lattice, raster order.
  cfg.hamiltonian.shape = (size, size) if lattice_2d else (size,)
  cfg.hamiltonian.pbc = True  # periodic (True) or open boundaries
  for field in HAMILTONIAN_FIELDS[kind]:  # Commented in COUPLINGS.
    if field not in hamiltonian:
      raise ValueError(f"hamiltonian of kind {kind!r} needs field {field!r}; "
                       f"got {sorted(hamiltonian)}")
    cfg.hamiltonian[field] = hamiltonian[field]

  cfg.optimizer = config_dict.ConfigDict()
  cfg.optimizer.name = "sgd"  # sgd | adam | adamw | rmsprop | adabelief
  # The step size (with SR: the imaginary-time step), or a schedule's peak.
  cfg.optimizer.learning_rate = args.lr
  # constant | cosine | warmup_cosine, over vmc.steps.
  cfg.optimizer.schedule = args.schedule
  cfg.optimizer.warmup_steps = 0  # warmup_cosine: linear warmup from 0
  # cosine, warmup_cosine: the final rate as a fraction of learning_rate.
  cfg.optimizer.final_lr_fraction = args.final_lr_fraction
  cfg.optimizer.sr = config_dict.ConfigDict()
  cfg.optimizer.sr.enabled = True  # precondition the gradient with SR
  cfg.optimizer.sr.diag_shift = args.diag_shift  # lambda in (S + lambda 1)
  # auto (minsr when samples < parameters, else cholesky) | cholesky | cg |
  # minsr.
  cfg.optimizer.sr.solver = "auto"

  cfg.vmc = config_dict.ConfigDict()
  cfg.vmc.steps = TINY_STEPS if args.tiny else args.steps  # VMC steps in all
  # Exact samples per step.
  cfg.vmc.n_samples = TINY_SAMPLES if args.tiny else args.samples
  cfg.vmc.chunk_size = 0  # samples at once through the network; 0: all
  cfg.vmc.seed = args.seed  # parameters and samples
  # None, or the total S^z (sum of sigma_z / 2) of the only configurations
  # the model holds and the sampler draws: 0 for the ground state of an
  # antiferromagnet on an even number of sites. Needs an S^z-conserving
  # Hamiltonian (heisenberg, j1j2); the exact energy is that of the sector.
  cfg.vmc.total_sz = registry.any_type(total_sz)
  # The final energy: one evaluation with this many fresh samples. Its error
  # bar, sqrt(variance / eval_samples), must be well below the relative
  # error sought: at a variance of 0.02, 4096 samples give +-2e-3 on the
  # TFIM chain's -25.49 (8e-5 relative), too coarse to tell 1e-4.
  cfg.vmc.eval_samples = 4 * cfg.vmc.n_samples
  if not args.tiny:
    cfg.vmc.eval_samples = max(cfg.vmc.eval_samples, EVAL_SAMPLES)

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
  model, hamiltonian = row.pop("model"), row.pop("hamiltonian")
  lattice = row.pop("lattice", None)
  total_sz = row.pop("total_sz", None)
  args = registry.parse_arg(arg, **{**ARGS, **row})
  return base_config(model, hamiltonian, args, lattice, total_sz)


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  """For launching by path: `experiment=NAME` picks the row (default:
  DEFAULT); the other arguments are those of the registered names."""
  items = [item for item in (arg or "").split(",") if item.strip()]
  chosen = [item for item in items
            if item.partition("=")[0].strip() == "experiment"]
  name = registry.parse_arg(",".join(chosen), experiment=DEFAULT).experiment
  rest = ",".join(item for item in items if item not in chosen)
  return get_config_of(name, rest or None)


def register_configs(registry_) -> None:
  """Registers every row of EXPERIMENTS with `registry_`."""
  for name in EXPERIMENTS:
    registry_.register(name, _named_get_config(name))


def _named_get_config(name: str):

  def named_get_config(arg=None):
    return get_config_of(name, arg)

  named_get_config.__qualname__ = named_get_config.__name__ = (
      f"get_config[{name}]")
  named_get_config.__doc__ = f"The experiment {name}; see configs.experiments."
  return named_get_config

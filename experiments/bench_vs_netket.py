r"""Our fast ARNNs against NetKet's: sampling throughput and a VMC step.

Both sides get the same architecture (3 masked layers, 16 features, kernel 3
in 1D or (3, 5) in 2D), the same parameter and sample dtype (float32) and the
same batch (1024 samples per call). Each case compiles and warms up every
contender first, then times them alternately, `--rounds` rounds of
[ours, NetKet], so that both see the same machine load; the median of each
is reported, with ours/NetKet as a throughput ratio (> 1: ours is faster).

Ours: `zoo.sampler.sample(model, params, key, n)` with a fresh key per call,
and `zoo.vmc.make_vmc(...).step`. NetKet: `MCState.sample()` with an
`ARDirectSampler` (or the sampler's own `sample` under `jit`, see
`--netket_call`), and a `VMC` driver step (`compute_loss_and_update` +
`update_parameters`, what `driver.run` does per step) with `Sgd`, no SR.

`--devices=2` splits the host into two XLA CPU devices (XLA_FLAGS is set
before JAX starts its backend); NetKet then runs with
NETKET_EXPERIMENTAL_SHARDING=1 and ours with `mesh=zoo.sharding.batch_mesh()`.
NetKet must be installed in the same environment (see docs/benchmarks.md); without
it only ours is timed.

  python -m experiments.bench_vs_netket
  python -m experiments.bench_vs_netket --devices=2
  python -m experiments.bench_vs_netket --cases=1d_256,2d_10 --models=fast,slow
  python -m experiments.bench_vs_netket --memory --check --plot=/tmp/rate.png

Glossary of shapes:
  n: samples per call, N: sites, L: side of a square lattice (N = L * L).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import inspect
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo import physics, sampler, sharding
from zoo import vmc as zoo_vmc

FLAGS = flags.FLAGS

# Sampling cases: dim, L (sites N = L in 1D, L * L in 2D), kernel dilation
# (None: 1). A per-layer 1D schedule is ours only: NetKet takes one dilation.
SAMPLING_CASES = {
    "1d_64": dict(dim=1, size=64),
    "1d_256": dict(dim=1, size=256),
    "1d_1024": dict(dim=1, size=1024),
    "2d_6": dict(dim=2, size=6),
    "2d_10": dict(dim=2, size=10),
    "2d_16": dict(dim=2, size=16),
    "1d_256_d2": dict(dim=1, size=256, dilation=2),
    "1d_256_d124": dict(dim=1, size=256, dilation=(1, 2, 4)),
    "2d_10_d2": dict(dim=2, size=10, dilation=(2, 2)),
}
# Recurrent cases (`--rnn_layers` x `--rnn_features`, periodic unless
# "open"): ours FastARNNGRU, NetKet's FastGRUNet1D on chains and FastLSTMNet
# on the square lattice (its GRU fails on a 2D graph); opt-in through
# --cases. On a periodic lattice ours reads four neighbours, NetKet's two;
# with open boundaries both read the two earlier ones.
RNN_SAMPLING_CASES = {
    "rnn_1d_64": dict(dim=1, size=64, family="rnn"),
    "rnn_1d_256": dict(dim=1, size=256, family="rnn"),
    "rnn_2d_6": dict(dim=2, size=6, family="rnn"),
    "rnn_2d_10": dict(dim=2, size=10, family="rnn"),
    "rnn_2d_6_open": dict(dim=2, size=6, family="rnn", pbc=False),
    "rnn_2d_10_open": dict(dim=2, size=10, family="rnn", pbc=False),
}
SAMPLING_CASES.update(RNN_SAMPLING_CASES)
# VMC step cases: transverse-field Ising model on a periodic chain / square;
# and the recurrent one: the Heisenberg model (Marshall-rotated) on the
# periodic 6 x 6 lattice in float64 with SR (ours minSR; NetKet's VMC
# driver with an SR preconditioner), over the whole space on both sides.
VMC_CASES = {
    "vmc_tfim_1d_64": dict(dim=1, size=64),
    "vmc_tfim_2d_8": dict(dim=2, size=8),
    "vmc_heisenberg_2d_10": dict(dim=2, size=10, hamiltonian="heisenberg"),
    # SR at equal samples: ours (the solver "auto" picks) against NetKet's
    # VMC_SR driver (which picks its NTK form when it pays).
    "vmc_tfim_1d_64_sr": dict(dim=1, size=64, sr="vmc_sr"),
    "vmc_tfim_2d_8_sr": dict(dim=2, size=8, sr="vmc_sr"),
    "vmc_heisenberg_2d_6_rnn": dict(dim=2, size=6, family="rnn",
                                    hamiltonian="heisenberg", sr=True,
                                    dtype="float64"),
}
CASES = {**SAMPLING_CASES, **VMC_CASES}
DEFAULT_CASES = [name for name, case in CASES.items() if "family" not in case]

flags.DEFINE_integer("devices", 1, "XLA CPU devices to split the host into; "
                     "> 1 shards the batch on both sides.")
flags.DEFINE_list("cases", DEFAULT_CASES, f"Cases, from {list(CASES)}.")
flags.DEFINE_integer("rnn_layers", 2, "Recurrent layers of the rnn cases.")
flags.DEFINE_integer("rnn_features", 32, "Hidden features of the rnn cases.")
flags.DEFINE_float("sr_diag_shift", 1e-3, "SR diagonal shift (sr cases).")
flags.DEFINE_list("models", ["fast"], "Twins to time in sampling cases: "
                  "fast and/or slow (slow models cost O(N^2) per sample).")
flags.DEFINE_integer("slow_max_sites", 100,
                     "Skip slow models above this many sites.")
flags.DEFINE_integer("batch", 1024, "Samples per sampling call.")
flags.DEFINE_integer("layers", 3, "Masked layers.")
flags.DEFINE_integer("features", 16, "Hidden features.")
flags.DEFINE_integer("kernel_1d", 3, "1D kernel size.")
flags.DEFINE_list("kernel_2d", ["3", "5"], "2D kernel (rows, columns).")
flags.DEFINE_enum("dtype", "float32", ["float32", "float64"],
                  "Parameter dtype (and sample dtype on both sides).")
flags.DEFINE_enum("netket_sample_dtype", "same", ["same", "int8"],
                  "NetKet's sample dtype: the parameter dtype, as ours, or "
                  "int8 (NetKet's own default for spins).")
flags.DEFINE_enum("netket_call", "mcstate", ["mcstate", "sampler"],
                  "Time NetKet's MCState.sample(), or sampler.sample under "
                  "one jax.jit of our own.")
flags.DEFINE_bool("netket_drives_zoo", False, "Sampling cases: also time "
                  "NetKet's MCState.sample() drawing our fast model with "
                  "our sampler (zoo.netket).")
flags.DEFINE_integer("rounds", 5, "Timed rounds of [ours, NetKet] per case.")
flags.DEFINE_integer("vmc_samples", 1024, "Samples per VMC step.")
flags.DEFINE_float("tfim_h", 1.0, "Transverse field h of the VMC cases.")
flags.DEFINE_float("learning_rate", 0.01, "SGD step size of the VMC cases.")
flags.DEFINE_bool("memory", False, "Report XLA's compiled memory of one "
                  "sampling call for --memory_case and --memory_samples.")
flags.DEFINE_enum("memory_case", "2d_16", list(SAMPLING_CASES),
                  "Case of the memory report.")
flags.DEFINE_integer("memory_samples", 4096, "Samples of the memory report.")
flags.DEFINE_bool("check", False, "Before timing, check that both samplers "
                  "give valid configurations and ours consistent log probs.")
flags.DEFINE_string("plot", None, "Save samples/s vs N (fast models) here.")
flags.DEFINE_string("json", None, "Save every figure and the machine here.")


# ----------------------------------------------------------------------------
# Set-up: devices before the backend starts, then NetKet.


def configure_devices(n_devices: int):
  """Splits the host into `n_devices` XLA CPU devices; returns NetKet or None.

  XLA reads XLA_FLAGS when JAX starts its backend, and NetKet reads
  NETKET_EXPERIMENTAL_SHARDING (and starts the backend) when imported, so
  both are set here, before either happens.
  """
  if n_devices < 1:
    raise app.UsageError(f"--devices must be >= 1, got {n_devices}")
  if n_devices > 1:
    os.environ["XLA_FLAGS"] = " ".join([
        os.environ.get("XLA_FLAGS", ""),
        f"--xla_force_host_platform_device_count={n_devices}"]).strip()
    os.environ["NETKET_EXPERIMENTAL_SHARDING"] = "1"
    # NetKet 3.23 calls the variable deprecated but still sets its mesh from
    # it; and its ARDirectSampler state holds no samples to shard.
    warnings.filterwarnings("ignore", "Environment variable NETKET_EXPERIMENTAL")
    warnings.filterwarnings("ignore", ".*ARDirectSampler.reset.*not sharded")
  try:
    netket = importlib.import_module("netket")
  except ImportError as e:
    print(f"# NetKet is not importable here ({e}); timing ours only. "
          "See docs/benchmarks.md to install it.")
    netket = None
  if jax.device_count() != n_devices:
    raise app.UsageError(
        f"--devices={n_devices} but JAX sees {jax.device_count()} devices: "
        "its backend started before XLA_FLAGS was set; set "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={n_devices}")
  return netket


def machine_info(netket) -> dict:
  with open("/proc/cpuinfo") as f:
    cpuinfo = f.read()
  model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                if line.startswith("model name")), platform.processor())
  cpu_flags = next((line.split(":", 1)[1].split() for line in
                    cpuinfo.splitlines() if line.startswith("flags")), [])
  versions = {"python": platform.python_version(), "jax": jax.__version__,
              "jaxlib": importlib.import_module("jaxlib").__version__,
              "numpy": np.__version__}
  for name in ("haiku", "optax", "flax"):
    try:
      versions[name] = importlib.import_module(name).__version__
    except ImportError:
      pass
  if netket is not None:
    versions["netket"] = netket.__version__
  repo = os.path.dirname(os.path.dirname(os.path.abspath(zoo.__file__)))
  git = lambda *a: subprocess.run(["git", "-C", repo, *a], capture_output=True,
                                  text=True).stdout.strip()
  return dict(
      date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
      cpu=model, avx512=("avx512f" in cpu_flags), cores=os.cpu_count(),
      usable_cores=len(os.sched_getaffinity(0)), versions=versions,
      devices=[str(d) for d in jax.devices()],
      xla_flags=os.environ.get("XLA_FLAGS", ""),
      netket_sharding=os.environ.get("NETKET_EXPERIMENTAL_SHARDING", "0"),
      commit=git("rev-parse", "--short", "HEAD"),
      zoo_dirty=bool(git("status", "--porcelain", "zoo")),
      load_before=os.getloadavg())


# ----------------------------------------------------------------------------
# Models on both sides.


def n_sites(case: dict) -> int:
  return case["size"] if case["dim"] == 1 else case["size"] ** 2


def case_label(name: str) -> str:
  case = CASES[name]
  size = (f"N={case['size']}" if case["dim"] == 1
          else f"{case['size']}x{case['size']}")
  dilation = case.get("dilation")
  family = " rnn" if case.get("family") == "rnn" else ""
  return (f"{case['dim']}d {size}{family}"
          + ("" if case.get("pbc", True) else " open")
          + (f" d={dilation}" if dilation else "")
          + (" SR" if case.get("sr") else ""))


def case_dtype(case: dict):
  return jnp.dtype(case.get("dtype", FLAGS.dtype))


def kernel(case: dict):
  return (FLAGS.kernel_1d if case["dim"] == 1
          else tuple(int(k) for k in FLAGS.kernel_2d))


def build_ours(case: dict, fast: bool, hilbert=None):
  if hilbert is None:
    size = case["size"]
    hilbert = zoo.spin_half(size if case["dim"] == 1 else (size, size))
  if case.get("family") == "rnn":
    family = zoo.FastARNNGRU if fast else zoo.ARNNGRU
    return family(hilbert, layers=FLAGS.rnn_layers,
                  features=FLAGS.rnn_features, pbc=case.get("pbc", True),
                  param_dtype=case_dtype(case))
  if case["dim"] == 1:
    family = zoo.FastARNNConv1D if fast else zoo.ARNNConv1D
  else:
    family = zoo.FastARNNConv2D if fast else zoo.ARNNConv2D
  return family(hilbert, layers=FLAGS.layers, features=FLAGS.features,
                kernel_size=kernel(case),
                kernel_dilation=case.get("dilation") or 1,
                param_dtype=FLAGS.dtype)


def build_netket(nk, case: dict, fast: bool):
  """NetKet's twin of `build_ours`, with its Hilbert space; None if it has
  none (a per-layer dilation schedule)."""
  dilation = case.get("dilation")
  if case["dim"] == 1 and isinstance(dilation, tuple):
    return None, None
  hilbert = nk.hilbert.Spin(0.5, n_sites(case))
  if case.get("family") == "rnn":
    nkx = importlib.import_module("netket.experimental")
    size = case["size"]
    if case["dim"] == 1:
      family = nkx.models.FastGRUNet1D if fast else nkx.models.GRUNet1D
      graph = nk.graph.Chain(size, pbc=True)
    else:
      family = nkx.models.FastLSTMNet if fast else nkx.models.LSTMNet
      graph = nk.graph.Square(size, pbc=case.get("pbc", True))
    return family(hilbert=hilbert, layers=FLAGS.rnn_layers,
                  features=FLAGS.rnn_features, graph=graph,
                  param_dtype=case_dtype(case)), hilbert
  if case["dim"] == 1:
    family = nk.models.FastARNNConv1D if fast else nk.models.ARNNConv1D
    dilation = dilation or 1
  else:
    family = nk.models.FastARNNConv2D if fast else nk.models.ARNNConv2D
    dilation = dilation or (1, 1)
  model = family(hilbert=hilbert, layers=FLAGS.layers,
                 features=FLAGS.features, kernel_size=kernel(case),
                 kernel_dilation=dilation, param_dtype=jnp.dtype(FLAGS.dtype))
  return model, hilbert


def netket_sampler(nk, hilbert, dtype=None):
  dtype = (jnp.int8 if FLAGS.netket_sample_dtype == "int8"
           else jnp.dtype(dtype or FLAGS.dtype))
  return nk.sampler.ARDirectSampler(hilbert, dtype=dtype)


# ----------------------------------------------------------------------------
# Timed calls: each runs once and blocks until its results are ready.


def in_mesh(mesh):
  """A context with our mesh as JAX's context mesh (none without a mesh).

  NetKet's sharding mode sets its own mesh (axis "S") as the global context
  mesh; arrays made under it carry that mesh, and `jax.shard_map` refuses a
  mesh that differs from the context one. So our side makes its arrays and
  runs under its own mesh.
  """
  return contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh)


def with_mesh(mesh, call):
  def wrapped():
    with in_mesh(mesh):
      return call()
  return wrapped


def ours_sampling_call(model, mesh):
  with in_mesh(mesh):
    params, _ = model.init(jax.random.key(0))
  seeds = itertools.count(1)

  def call():
    jax.block_until_ready(sampler.sample(
        model, params, jax.random.key(next(seeds)), FLAGS.batch, mesh=mesh))
  return with_mesh(mesh, call)


def netket_sampling_call(nk, model, hilbert):
  nk_sampler = netket_sampler(nk, hilbert)
  vstate = nk.vqs.MCState(nk_sampler, model, n_samples=FLAGS.batch, seed=0,
                          sampler_seed=1)
  if FLAGS.netket_call == "mcstate":
    return lambda: jax.block_until_ready(vstate.sample())
  chain_length = vstate.chain_length
  draw = jax.jit(lambda variables, state: nk_sampler.sample(
      model, variables, state=state, chain_length=chain_length))
  state = vstate.sampler_state

  def call():
    nonlocal state
    samples, state = draw(vstate.variables, state)
    jax.block_until_ready(samples)
  return call


def netket_drives_zoo_call(nk, case: dict):
  """NetKet's MCState sampling our fast model with our sampler."""
  zoo_netket = importlib.import_module("zoo.netket")
  hilbert = nk.hilbert.Spin(0.5, n_sites(case))
  vstate = nk.vqs.MCState(
      zoo_netket.Sampler(hilbert, dtype=jnp.dtype(FLAGS.dtype)),
      zoo_netket.Model(build_ours(case, True), hilbert),
      n_samples=FLAGS.batch, seed=0, sampler_seed=1)
  return lambda: jax.block_until_ready(vstate.sample())


def lattice(case: dict):
  """The periodic chain or square lattice of a case."""
  size = case["size"]
  return physics.chain(size) if case["dim"] == 1 else physics.square(size)


def tfim(case: dict):
  return physics.TransverseFieldIsing(lattice(case), h=FLAGS.tfim_h)


def heisenberg(case: dict):
  return physics.Heisenberg(lattice(case), marshall_sign=True)


def ours_vmc_call(case: dict, mesh):
  """Our jitted VMC step; also returns a function of the last energy / N."""
  hamiltonian = (heisenberg(case) if case.get("hamiltonian") == "heisenberg"
                 else tfim(case))
  model = build_ours(case, fast=True, hilbert=hamiltonian.hilbert)
  kwargs = dict(n_samples=FLAGS.vmc_samples)
  sharded = "mesh" in inspect.signature(zoo_vmc.make_vmc).parameters
  if mesh is not None and sharded:
    kwargs["mesh"] = mesh
  sr = dict(diag_shift=FLAGS.sr_diag_shift) if case.get("sr") else None
  vmc = zoo_vmc.make_vmc(
      model, hamiltonian,
      zoo_vmc.make_optimizer("sgd", FLAGS.learning_rate, sr=sr), **kwargs)
  with in_mesh(mesh):
    state = vmc.init(jax.random.key(0))
  stats = None

  def call():
    nonlocal state, stats
    state, stats = vmc.step(state)
    jax.block_until_ready((state, stats))
  energy = lambda: float(stats.energy) / hamiltonian.n_sites
  return with_mesh(mesh, call), energy, (mesh is None or sharded)


def netket_vmc_call(nk, case: dict):
  size = case["size"]
  graph = (nk.graph.Chain(size, pbc=True) if case["dim"] == 1
           else nk.graph.Square(size, pbc=True))
  model, hilbert = build_netket(nk, case, fast=True)
  dtype = case_dtype(case)
  if case.get("hamiltonian") == "heisenberg":
    # NetKet's Heisenberg is J sum sigma . sigma (ours S . S = that / 4),
    # with the Marshall sign rule on the bipartite lattice.
    hamiltonian = nk.operator.Heisenberg(hilbert, graph, sign_rule=True,
                                         dtype=dtype)
  else:
    # NetKet's Ising is -h sum sx + J sum sz sz: J = -1 is our J = +1.
    hamiltonian = nk.operator.IsingJax(hilbert, graph, h=FLAGS.tfim_h,
                                       J=-1.0, dtype=dtype)
  vstate = nk.vqs.MCState(netket_sampler(nk, hilbert, dtype), model,
                          n_samples=FLAGS.vmc_samples, seed=0, sampler_seed=1)
  optimizer = nk.optimizer.Sgd(FLAGS.learning_rate)
  if case.get("sr") == "vmc_sr":
    driver = nk.driver.VMC_SR(hamiltonian, optimizer,
                              diag_shift=FLAGS.sr_diag_shift,
                              variational_state=vstate)
  else:
    preconditioner = (nk.optimizer.SR(diag_shift=FLAGS.sr_diag_shift)
                      if case.get("sr") else None)
    kwargs = {} if preconditioner is None else dict(
        preconditioner=preconditioner)
    driver = nk.driver.VMC(hamiltonian, optimizer, variational_state=vstate,
                           **kwargs)
  loss = None

  def call():
    nonlocal loss
    loss, update = driver.compute_loss_and_update()
    driver.update_parameters(update)
    jax.block_until_ready((vstate.parameters, loss.mean))
  energy = lambda: float(np.real(loss.mean)) / hilbert.size
  return call, energy


def alternate(calls: dict) -> dict:
  """Warm-up (compile) then `--rounds` rounds over `calls` in turn.

  Returns name -> dict(compile_s, times_s, median_s).
  """
  result = {}
  for name, call in calls.items():
    start = time.perf_counter()
    call()
    compile_s = time.perf_counter() - start
    call()  # a second untimed call: caches, allocator
    result[name] = dict(compile_s=compile_s, times_s=[])
  for _ in range(FLAGS.rounds):
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      result[name]["times_s"].append(time.perf_counter() - start)
  for timing in result.values():
    timing["median_s"] = statistics.median(timing["times_s"])
  return result


def spread(times) -> str:
  """Relative spread of the repeats, (max - min) / median."""
  return f"{(max(times) - min(times)) / statistics.median(times):.0%}"


# ----------------------------------------------------------------------------
# Cases.


def run_sampling_case(nk, name: str, mesh) -> list[dict]:
  case = SAMPLING_CASES[name]
  calls = {}
  for twin in FLAGS.models:
    fast = twin == "fast"
    if not fast and n_sites(case) > FLAGS.slow_max_sites:
      continue
    calls[f"ours_{twin}"] = ours_sampling_call(build_ours(case, fast), mesh)
    if nk is not None:
      model, hilbert = build_netket(nk, case, fast)
      if model is not None:
        calls[f"netket_{twin}"] = netket_sampling_call(nk, model, hilbert)
      if FLAGS.netket_drives_zoo and fast:
        calls[f"nkzoo_{twin}"] = netket_drives_zoo_call(nk, case)
  load = os.getloadavg()[0]
  timings = alternate(calls)
  rows = []
  for twin in FLAGS.models:
    ours = timings.get(f"ours_{twin}")
    if ours is None:
      continue
    theirs = timings.get(f"netket_{twin}")
    row = dict(case=name, label=case_label(name), sites=n_sites(case),
               twin=twin, load=load, ours=ours, netket=theirs,
               ours_per_s=FLAGS.batch / ours["median_s"])
    if theirs is not None:
      row["netket_per_s"] = FLAGS.batch / theirs["median_s"]
      row["ratio"] = row["ours_per_s"] / row["netket_per_s"]
    driven = timings.get(f"nkzoo_{twin}")
    if driven is not None:
      row["nkzoo"] = driven
      row["nkzoo_per_s"] = FLAGS.batch / driven["median_s"]
    rows.append(row)
  return rows


def run_vmc_case(nk, name: str, mesh) -> dict:
  case = VMC_CASES[name]
  ours_call, ours_energy, ours_sharded = ours_vmc_call(case, mesh)
  calls = {"ours": ours_call}
  if nk is not None:
    calls["netket"], netket_energy = netket_vmc_call(nk, case)
  load = os.getloadavg()[0]
  timings = alternate(calls)
  system = "Heisenberg" if case.get("hamiltonian") == "heisenberg" else "TFIM"
  row = dict(case=name, label=case_label(name).replace("d ", f"d {system} ", 1),
             sites=n_sites(case), load=load, ours=timings["ours"],
             ours_energy=ours_energy(), ours_sharded=ours_sharded)
  if nk is not None:
    row.update(netket=timings["netket"], netket_energy=netket_energy(),
               ratio=timings["netket"]["median_s"] / timings["ours"]["median_s"])
  return row


def memory_report(nk, mesh) -> dict:
  """XLA's account (arguments + outputs + temporaries) of one sampling call
  of `--memory_samples` on `--memory_case`, fast models, in MiB."""
  case = SAMPLING_CASES[FLAGS.memory_case]
  n = FLAGS.memory_samples

  def mib(compiled):
    m = compiled.memory_analysis()
    if m is None:
      return None
    parts = (m.argument_size_in_bytes, m.output_size_in_bytes,
             m.temp_size_in_bytes)
    return dict(total=sum(parts) / 2**20, temp=parts[2] / 2**20)

  model = build_ours(case, fast=True)
  chunk = sampler.chunk_for(n, None, mesh, model=model)
  with in_mesh(mesh):
    params, _ = model.init(jax.random.key(0))
    compiled = sampler._draw_jit.lower(
        model, params, jax.random.key(0), n, chunk, mesh).compile()
  report = dict(case=FLAGS.memory_case, samples=n, ours=mib(compiled))
  if nk is not None:
    nk_model, hilbert = build_netket(nk, case, fast=True)
    if nk_model is not None:
      nk_sampler = netket_sampler(nk, hilbert)
      variables = nk_model.init(jax.random.key(0),
                                jnp.zeros((1, hilbert.size), jnp.int8))
      state = nk_sampler.init_state(nk_model, variables, seed=0)
      chain_length = n // nk_sampler.n_chains
      draw = jax.jit(lambda v, s: nk_sampler.sample(
          nk_model, v, state=s, chain_length=chain_length))
      report["netket"] = mib(draw.lower(variables, state).compile())
  return report


def cross_check(nk, mesh) -> bool:
  """Valid samples on both sides; ours: log p(x) == machine_pow Re log psi(x),
  the fast twin draws what the slow one draws, and the mesh changes nothing."""
  ok = True

  def report(what, passed, detail=""):
    nonlocal ok
    ok &= bool(passed)
    print(f"#   {'ok  ' if passed else 'FAIL'} {what} {detail}")

  print("# cross-check")
  n = 256
  for case in (dict(dim=1, size=12), dict(dim=2, size=4)):
    label = f"{case['dim']}d L={case['size']}"
    fast, slow = build_ours(case, True), build_ours(case, False)
    params, _ = fast.init(jax.random.key(0))
    key = jax.random.key(7)
    x, log_prob = sampler.sample(fast, params, key, n, return_log_prob=True)
    report(f"ours {label}: samples valid",
           fast.hilbert.contains(x).all() and x.dtype == jnp.dtype(FLAGS.dtype),
           f"(dtype {x.dtype})")
    gap = float(jnp.max(jnp.abs(
        log_prob - fast.machine_pow * fast.log_psi(params, x).real)))
    report(f"ours {label}: log p == 2 Re log psi", gap < 1e-3,
           f"(max gap {gap:.1e})")
    x_slow = sampler.sample(slow, params, key, n)
    same = float(jnp.mean(jnp.all(x_slow == x, axis=-1)))
    report(f"ours {label}: fast draws == slow draws", same > 0.99,
           f"({same:.1%} identical)")
    if mesh is not None:
      with in_mesh(mesh):
        x_mesh = sampler.sample(fast, fast.init(jax.random.key(0))[0],
                                jax.random.key(7), n, mesh=mesh)
      report(f"ours {label}: mesh draws == single-device draws",
             np.array_equal(np.asarray(x_mesh), np.asarray(x)))
    if nk is not None:
      nk_model, hilbert = build_netket(nk, case, fast=True)
      vstate = nk.vqs.MCState(netket_sampler(nk, hilbert), nk_model,
                              n_samples=n, seed=0)
      s = np.asarray(vstate.sample()).reshape(-1, hilbert.size)
      report(f"netket {label}: samples valid",
             s.shape[0] == n and np.isin(s, [-1, 1]).all(),
             f"(shape {s.shape}, dtype {s.dtype})")
  return ok


# ----------------------------------------------------------------------------
# Output.


def exponent(rows, side: str):
  """Fitted p in (time per sample) ~ N^p over the plain 1D fast cases."""
  points = sorted((r["sites"], 1 / r[f"{side}_per_s"]) for r in rows
                  if r["twin"] == "fast" and f"{side}_per_s" in r
                  and SAMPLING_CASES[r["case"]]["dim"] == 1
                  and not SAMPLING_CASES[r["case"]].get("dilation")
                  and "family" not in SAMPLING_CASES[r["case"]])
  if len(points) < 2:
    return None
  sites, cost = zip(*points)
  return float(np.polyfit(np.log(sites), np.log(cost), 1)[0])


def plot(rows, info, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for dim, style in ((1, "-"), (2, "--")):
    for twin, marker in (("fast", "o"), ("slow", "x")):
      for side, color, label in (("ours", "C0", "ours (zoo)"),
                                 ("netket", "C1", "NetKet")):
        points = sorted((r["sites"], r[f"{side}_per_s"]) for r in rows
                        if r["twin"] == twin and f"{side}_per_s" in r
                        and SAMPLING_CASES[r["case"]]["dim"] == dim
                        and not SAMPLING_CASES[r["case"]].get("dilation")
                        and "family" not in SAMPLING_CASES[r["case"]])
        if points:
          ax.plot(*zip(*points), style, color=color, marker=marker,
                  alpha=1.0 if twin == "fast" else 0.6,
                  label=f"{label}, {dim}D {twin}")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("sites N (2D: L x L)")
  ax.set_ylabel("samples / s")
  ax.set_title(f"ARNN sampling (fast and slow twins), batch {FLAGS.batch}, {FLAGS.dtype}, "
               f"{len(info['devices'])} device(s)", fontsize=10)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  print(f"# plot: {path}")


def print_header(info):
  v = info["versions"]
  print(f"# {info['date']}  {info['cpu']} (avx512: {info['avx512']}), "
        f"{info['usable_cores']}/{info['cores']} cores, load "
        + " ".join(f"{x:.2f}" for x in info["load_before"]))
  print("# " + ", ".join(f"{k} {val}" for k, val in v.items())
        + f"; repo {info['commit']}" + (" (zoo/ modified)" if
                                        info["zoo_dirty"] else ""))
  print(f"# devices: {len(info['devices'])} ({FLAGS.devices}); XLA_FLAGS="
        f"{info['xla_flags']!r}; NETKET_EXPERIMENTAL_SHARDING="
        f"{info['netket_sharding']}")
  print(f"# {FLAGS.layers} layers, {FLAGS.features} features, kernel "
        f"{FLAGS.kernel_1d} (1D) / ({','.join(FLAGS.kernel_2d)}) (2D), "
        f"{FLAGS.dtype} params, batch {FLAGS.batch}, NetKet via "
        f"{FLAGS.netket_call} (samples "
        f"{FLAGS.dtype if FLAGS.netket_sample_dtype == 'same' else 'int8'}); "
        f"median of {FLAGS.rounds} alternating rounds after warm-up")


def main(argv):
  del argv
  for name in FLAGS.cases:
    if name not in CASES:
      raise app.UsageError(f"--cases: unknown case {name!r}; "
                           f"expected some of {list(CASES)}")
  for twin in FLAGS.models:
    if twin not in ("fast", "slow"):
      raise app.UsageError(f"--models: expected fast and/or slow, got {twin!r}")
  nk = configure_devices(FLAGS.devices)
  mesh = sharding.batch_mesh() if FLAGS.devices > 1 else None
  info = machine_info(nk)
  print_header(info)
  results = dict(machine=info, flags={f: getattr(FLAGS, f) for f in (
      "devices", "batch", "layers", "features", "kernel_1d", "kernel_2d",
      "dtype", "netket_sample_dtype", "netket_call", "rounds", "vmc_samples",
      "tfim_h", "learning_rate")}, sampling=[], vmc=[])

  if FLAGS.check:
    results["check_ok"] = cross_check(nk, mesh)

  sampling = [c for c in FLAGS.cases if c in SAMPLING_CASES]
  if sampling:
    print(f"{'case':<20}{'model':>6}{'ours/s':>10}{'netket/s':>10}"
          f"{'ours/nk':>9}{'spread o/n':>12}{'compile o/n s':>15}{'load':>6}")
  for name in sampling:
    for row in run_sampling_case(nk, name, mesh):
      results["sampling"].append(row)
      theirs = row["netket"]
      print(f"{row['label']:<20}{row['twin']:>6}{row['ours_per_s']:>10.0f}"
            + (f"{row['netket_per_s']:>10.0f}{row['ratio']:>8.2f}x"
               if theirs else f"{'-':>10}{'-':>9}")
            + f"{spread(row['ours']['times_s']):>7}/"
            + (f"{spread(theirs['times_s']):<4}" if theirs else "-   ")
            + f"{row['ours']['compile_s']:>9.1f}/"
            + (f"{theirs['compile_s']:<5.1f}" if theirs else "-    ")
            + f"{row['load']:>6.2f}"
            + (f"  NetKet driving ours: {row['nkzoo_per_s']:.0f}/s"
               if "nkzoo_per_s" in row else ""), flush=True)
  rows = results["sampling"]
  for side in ("ours", "netket"):
    p = exponent(rows, side)
    if p is not None:
      results[f"{side}_exponent"] = p
      print(f"# {side}: fast 1D time per sample ~ N^{p:.2f}")

  vmc_cases = [c for c in FLAGS.cases if c in VMC_CASES]
  if vmc_cases:
    print(f"{'VMC step':<20}{'ours s':>9}{'netket s':>10}{'nk/ours':>9}"
          f"{'E/N o/n':>16}{'spread o/n':>12}{'load':>6}")
  for name in vmc_cases:
    row = run_vmc_case(nk, name, mesh)
    results["vmc"].append(row)
    theirs = row.get("netket")
    note = "" if row["ours_sharded"] else "  (ours: no mesh in make_vmc yet)"
    print(f"{row['label']:<20}{row['ours']['median_s']:>9.4f}"
          + (f"{theirs['median_s']:>10.4f}{row['ratio']:>8.2f}x"
             f"{row['ours_energy']:>8.3f}/{row['netket_energy']:<7.3f}"
             if theirs else f"{'-':>10}{'-':>9}{row['ours_energy']:>8.3f}/-      ")
          + f"{spread(row['ours']['times_s']):>7}/"
          + (f"{spread(theirs['times_s']):<4}" if theirs else "-   ")
          + f"{row['load']:>6.2f}{note}", flush=True)

  if FLAGS.memory:
    mem = memory_report(nk, mesh)
    results["memory"] = mem
    fmt = lambda m: (f"{m['total']:.1f} MiB (temp {m['temp']:.1f})"
                     if m else "n/a")
    print(f"# memory, one call of {mem['samples']} samples on "
          f"{case_label(mem['case'])}: ours {fmt(mem['ours'])}, NetKet "
          f"{fmt(mem.get('netket'))}")

  results["machine"]["load_after"] = os.getloadavg()
  print("# load after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
  if FLAGS.plot and rows:
    plot(rows, info, FLAGS.plot)
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(results, f, indent=1, default=str)
    print(f"# json: {FLAGS.json}")
  if FLAGS.check and not results["check_ok"]:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)

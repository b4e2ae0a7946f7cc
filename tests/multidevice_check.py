"""Run in a subprocess (see tests/test_multidevice.py): 4 host devices, or
one of several processes joined by jax.distributed.

Prints one JSON line: energy traces of 1-device and 4-device runs.
"""

import json
import sys

import jax

import zoo
from zoo import sampler, sharding, vmc
from zoo.physics import hamiltonians, lattice


def main():
  mode = sys.argv[1]
  if mode == "process":  # process_id, num_processes, port
    process_id, num_processes, port = map(int, sys.argv[2:5])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if num_processes > 1:
      jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                 num_processes=num_processes,
                                 process_id=process_id)
  devices = jax.devices()
  out = {"n_devices": len(devices)}
  ham = hamiltonians.TransverseFieldIsing(lattice.chain(8, pbc=True), h=1.0)
  model = zoo.FastARNNConv1D(ham.hilbert, layers=2, features=4, kernel_size=3)
  if mode == "sample":
    params, _ = model.init(jax.random.key(0))
    one = sampler.sample(model, params, jax.random.key(1), 64,
                         mesh=sharding.batch_mesh(devices[:1]))
    four = sampler.sample(model, params, jax.random.key(1), 64, chunk_size=32,
                          mesh=sharding.batch_mesh(devices))
    out["same_samples"] = bool((one == four).all())
    out["sharding"] = str(four.sharding.spec)
    try:
      sampler.sample(model, params, jax.random.key(1), 30, mesh=sharding.batch_mesh(devices))
    except ValueError as e:
      out["error"] = str(e)
  elif mode == "process":
    opt = vmc.make_optimizer("sgd", 0.05, sr=dict(diag_shift=1e-2, solver="cholesky"))
    run = vmc.make_vmc(model, ham, opt, n_samples=64, mesh=sharding.batch_mesh())
    _, stats = run.run(run.init(jax.random.key(0)), 3)
    out["energy"] = [float(e) for e in stats.energy]
    out["process_index"] = jax.process_index()
  else:
    for solver in ("none", "cholesky"):
      sr = None if solver == "none" else dict(diag_shift=1e-2, solver=solver)
      opt = vmc.make_optimizer("sgd", 0.05, sr=sr)
      # Four devices, in chunks for the plain gradient.
      four = (4, 8) if solver == "none" else (4, None)
      for n_dev, chunk in ((1, None), four):
        mesh = sharding.batch_mesh(devices[:n_dev])
        run = vmc.make_vmc(model, ham, opt, n_samples=64, chunk_size=chunk, mesh=mesh)
        _, stats = run.run(run.init(jax.random.key(0)), 3)
        out[f"{solver}_{n_dev}_{chunk}"] = [float(e) for e in stats.energy]
  print(json.dumps(out))


if __name__ == "__main__":
  main()

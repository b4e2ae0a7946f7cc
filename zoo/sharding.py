"""Splitting the sample batch across devices with jax.sharding.

Samples, local energies and per-sample gradients are sharded along one mesh
axis, `batch`; parameters are replicated. Reductions over the batch (means,
the gradient, the SR matrix) are ordinary `jnp` reductions inside `jit`, which
XLA turns into cross-device collectives. With `jax.distributed` initialized,
`jax.devices()` spans every process, and so does the mesh.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zoo import checks

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1D mesh over `devices` (default: all devices of all processes)."""
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must name at least one device, got []")
  return Mesh(np.array(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh, rank: int = 1, axis: int = 0) -> NamedSharding:
  """Shards `axis` of a rank-`rank` array along the batch axis."""
  spec = [None] * rank
  spec[axis] = BATCH_AXIS
  return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_divisible(name: str, value: int, mesh: Mesh) -> None:
  """Raises a `zoo.checks.FieldError` unless the mesh's devices divide
  `value` (a batch to split over them)."""
  n = mesh.devices.size
  if value % n:
    raise checks.FieldError(
        name, value, f"is not divisible by the {n} devices of the batch "
        f"mesh; use a multiple of {n} (e.g. {value + n - value % n}) or fewer "
        "devices")


def constrain(x: jax.Array, mesh: Mesh | None, axis: int = 0) -> jax.Array:
  """Inside jit: keep `axis` of `x` (the samples' axis) split along the mesh."""
  if mesh is None or mesh.devices.size == 1:
    return x
  return jax.lax.with_sharding_constraint(
      x, batch_sharding(mesh, x.ndim, axis % x.ndim))

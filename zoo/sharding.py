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

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1D mesh over `devices` (default: all devices of all processes)."""
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must name at least one device, got []")
  return Mesh(np.array(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh, rank: int = 1) -> NamedSharding:
  """Shards axis 0 of a rank-`rank` array along the batch axis."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXIS, *([None] * (rank - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_divisible(name: str, value: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if value % n:
    raise ValueError(
        f"{name}={value} is not divisible by the {n} devices of the batch mesh; "
        f"use a multiple of {n} (e.g. {value + n - value % n}) or fewer devices")


def constrain(x: jax.Array, mesh: Mesh | None) -> jax.Array:
  """Inside jit: keep axis 0 of `x` split along the batch axis."""
  if mesh is None or mesh.devices.size == 1:
    return x
  return jax.lax.with_sharding_constraint(x, batch_sharding(mesh, x.ndim))

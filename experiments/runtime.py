"""Devices and processes for the launchers: JAX's own distributed runtime.

Flags (each falls back to an environment variable):
  --coordinator_address  host:port of process 0   (JAX_COORDINATOR_ADDRESS)
  --num_processes        processes in the job      (JAX_NUM_PROCESSES)
  --process_id           this process, 0-based     (JAX_PROCESS_ID)
  --cpu_devices          split the CPU into this many JAX devices, or `auto`
                         (one per core); default: JAX's own (one, or what
                         XLA_FLAGS asks for) (JAX_NUM_CPU_DEVICES)

With more than one process, `jax.distributed.initialize` joins them (on SLURM
or Open MPI the three values can be left out: JAX detects them); on CPU the
processes talk through gloo collectives. `jax.devices()` then spans every
process and the launchers shard the sample batch over all of them.

Call `setup()` at the start of `main`, before anything touches a device.
"""

from __future__ import annotations

import os

from absl import flags, logging
import jax

flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                    "host:port of process 0 for a multi-process run.")
flags.DEFINE_integer("num_processes", int(os.environ.get("JAX_NUM_PROCESSES", "0")) or None,
                     "Number of processes in a multi-process run.")
flags.DEFINE_integer("process_id", int(os.environ["JAX_PROCESS_ID"])
                     if "JAX_PROCESS_ID" in os.environ else None,
                     "Index of this process, 0-based.")
flags.DEFINE_string("cpu_devices", os.environ.get("JAX_NUM_CPU_DEVICES"),
                    "JAX devices to split the CPU into: a number or `auto` (one per "
                    "core). More than one lets the site loop of the sampler use "
                    "every core; ignored on GPU.")

FLAGS = flags.FLAGS
CPU_DEVICES_EXPECTED = "must be a positive integer or 'auto'"


def cpu_device_count(value: str) -> int:
  if value == "auto":
    return len(os.sched_getaffinity(0))
  try:
    count = int(value)
  except ValueError:
    count = 0
  if count < 1:
    raise ValueError(f"--cpu_devices={value!r}: {CPU_DEVICES_EXPECTED}")
  return count


def _valid_cpu_devices(value: str | None) -> bool:
  try:
    return value is None or cpu_device_count(value) >= 1
  except ValueError:
    return False


# Checked when the flags are parsed, so that a bad value is one line
# (`experiments.parse_flags`) before anything starts.
flags.register_validator("cpu_devices", _valid_cpu_devices,
                         message=CPU_DEVICES_EXPECTED)


def setup() -> None:
  """Configures CPU devices and joins the distributed job, if any."""
  if FLAGS.cpu_devices is not None:
    jax.config.update("jax_num_cpu_devices", cpu_device_count(FLAGS.cpu_devices))
  distributed = FLAGS.num_processes is not None and FLAGS.num_processes > 1
  if distributed or FLAGS.coordinator_address:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
  logging.info("process %d of %d; %d devices in all (%s), %d local",
               jax.process_index(), jax.process_count(), jax.device_count(),
               jax.devices()[0].platform, jax.local_device_count())


def is_main_process() -> bool:
  """Only process 0 writes files (checkpoints, metrics, plots)."""
  return jax.process_index() == 0

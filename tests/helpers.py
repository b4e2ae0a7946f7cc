"""Shared test fixtures: model cases that cover every family and space."""

import itertools
import os
from typing import Any, Callable, Iterable, Mapping

from absl.testing import parameterized
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import zoo
import zoo.models
from tests import xla_options

# Small spaces where every state can be enumerated; 2D lattices rectangular.
HILBERTS_1D = {
    "spin_half": lambda: zoo.spin_half(6),
    "spin_one": lambda: zoo.spin_one(5),
    "fock3": lambda: zoo.fock(3, 5),
}
HILBERTS_2D = {
    "spin_half": lambda: zoo.spin_half((2, 3)),
    "spin_one": lambda: zoo.spin_one((3, 2)),
    "fock3": lambda: zoo.fock(3, (2, 3)),
}
# The family table (zoo.models.FAMILIES): each family's small fields and
# the spaces it runs on in the shared cases (its record's example lattice:
# 2D lattices or chains), slow and fast constructors.
FAMILY_FIELDS = {name: dict(record.example)
                 for name, record in zoo.models.FAMILIES.items()}
TWO_D = tuple(name for name, record in zoo.models.FAMILIES.items()
              if record.example_lattice == "square")
SLOW_FAST = zoo.models.CONSTRUCTORS


def model_cases(fast: bool = False):
  """Every family x every space, cycling dtype and machine_pow so that each
  family meets both dtypes and both powers (a deterministic subset of the
  grid). The slow twin's name unless `fast` (the full pass, which the
  normalization and masking tests check, is the same code for both)."""
  cases = []
  pairs = itertools.product(SLOW_FAST, HILBERTS_1D)
  for i, (family, space) in enumerate(pairs):
    dtype = (jnp.float64, jnp.complex128)[i % 2]
    machine_pow = (2, 1)[(i // 2) % 2]
    name = SLOW_FAST[family][int(fast)].__name__
    cases.append(dict(
        testcase_name=f"{name}_{space}_{jnp.dtype(dtype).name}_p{machine_pow}",
        family=family, fast=fast, space=space, dtype=dtype,
        machine_pow=machine_pow))
  return cases


def build(family, fast, space, dtype=jnp.float64, machine_pow=2, **overrides):
  hilberts = HILBERTS_2D if family in TWO_D else HILBERTS_1D
  fields = dict(FAMILY_FIELDS[family], param_dtype=dtype,
                machine_pow=machine_pow, **overrides)
  hilbert = hilberts[space]() if isinstance(space, str) else space
  return SLOW_FAST[family][int(fast)](hilbert, **fields)


class _Grid:
  """The test methods absl's `named_parameters` makes of `cases`, the slow
  ones carrying pytest's `slow` mark (an iterable of methods, which absl's
  `parameterized.TestCase` expands as it does its own)."""

  def __init__(self, test: Callable, cases: list[Mapping[str, Any]],
               slow: Callable[[Mapping[str, Any]], bool]):
    self._cases = cases
    self._methods = parameterized.named_parameters(*cases)(test)
    self._slow = slow

  def __iter__(self):
    for case, method in zip(self._cases, self._methods, strict=True):
      yield pytest.mark.slow(method) if self._slow(case) else method


def grid(cases: Iterable[Mapping[str, Any]],
         slow: Callable[[Mapping[str, Any]], bool] = lambda case: False):
  """`parameterized.named_parameters(*cases)`, with the cases `slow` picks
  (a predicate on a case's fields, never on a test's name) in the slow tier:
  the one tier mechanism is the `slow` marker (tests/conftest.py)."""
  cases = list(cases)
  return lambda test: _Grid(test, cases, slow)


def chi_squared_p_value(counts, probs, min_expected=5.0):
  """Pearson chi-squared p-value, pooling states expected fewer than 5 times."""
  expected = probs * counts.sum()
  rare = expected < min_expected
  observed = np.append(counts[~rare], counts[rare].sum())
  expected = np.append(expected[~rare], expected[rare].sum())
  if expected[-1] == 0:
    observed, expected = observed[:-1], expected[:-1]
  return stats.chisquare(observed, expected).pvalue


# XLA's CPU collectives give up when a device's threads reach a collective
# 40 s after the others; with test workers on every core a subprocess's
# devices can fall that far apart without anything being wrong.
COLLECTIVE_TIMEOUT_FLAG = "--xla_cpu_collective_call_terminate_timeout_seconds=600"


def subprocess_env(devices: int | None = None) -> dict:
  """The environment of a test's JAX subprocess: the CPU, the tests' XLA
  options (tests/xla_options.py), and `devices` host devices where given:
  else XLA's default, one device, which also gets the unoptimized backend
  (pass `devices` for a command with `--cpu_devices` or several
  processes); collectives that wait out a loaded machine."""
  flags = [os.environ.get("XLA_FLAGS", ""), COLLECTIVE_TIMEOUT_FLAG]
  if devices is None:
    flags.extend(xla_options.ONE_DEVICE)
  else:
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=" ".join(filter(None, flags)))

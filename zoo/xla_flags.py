"""XLA options the zoo sets for the CPU backend when it is imported.

`--xla_cpu_prefer_vector_width=512` lets XLA's own CPU kernels (element-wise
loops: exp, selu, the cache updates) use 512-bit vectors on CPUs with
AVX-512; XLA defaults to 256. What it gains: BENCHMARKS.md, "Tuned
constants".

XLA reads XLA_FLAGS once, when JAX first creates the CPU backend, so this
takes effect only when `zoo` is imported before any JAX computation runs;
later it changes nothing. It never overrides a vector width already in
XLA_FLAGS. Set ARNN_ZOO_XLA_FLAGS=0 to leave XLA_FLAGS alone.
"""

from __future__ import annotations

import os

VECTOR_WIDTH_FLAG = "--xla_cpu_prefer_vector_width=512"


def has_avx512(cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether the CPU reports AVX-512 (Linux; False where it cannot tell)."""
  try:
    with open(cpuinfo) as f:
      return any(line.startswith("flags") and " avx512f" in line for line in f)
  except OSError:
    return False


def flags_with_vector_width(flags: str, avx512: bool) -> str:
  """XLA_FLAGS with the 512-bit preference added, where it applies."""
  if not avx512 or "xla_cpu_prefer_vector_width" in flags:
    return flags
  return f"{flags} {VECTOR_WIDTH_FLAG}".strip()


def apply(environ=os.environ) -> None:
  """Adds the zoo's XLA options to `environ["XLA_FLAGS"]` (see above)."""
  if environ.get("ARNN_ZOO_XLA_FLAGS", "1") == "0":
    return
  flags = environ.get("XLA_FLAGS", "")
  new = flags_with_vector_width(flags, has_avx512())
  if new != flags:
    environ["XLA_FLAGS"] = new

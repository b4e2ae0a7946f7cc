"""The launcher's figure: energy against the exact value, and the error."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from experiments import workdir as workdir_lib


def plot_energy(path: str, rows: Sequence[dict[str, Any]],
                exact_value: float | None, title: str) -> None:
  """energy.png: E per step with its error band and the exact line; below,
  the relative error on a log scale (or the variance, with no exact value).
  Written atomically."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  steps = np.array([r["step"] for r in rows])
  energy = np.array([r["energy"] for r in rows])
  error = np.array([r["error"] for r in rows])
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
  top.plot(steps, energy, lw=1, label="VMC")
  top.fill_between(steps, energy - error, energy + error, alpha=0.3, lw=0)
  if exact_value is not None:
    top.axhline(exact_value, color="k", ls="--", lw=1, label="exact")
    # Keep the start of training from squashing the converged part.
    spread = max(np.median(np.abs(energy - exact_value)) * 8,
                 abs(exact_value) * 1e-4)
    top.set_ylim(exact_value - spread / 4, exact_value + spread)
    relative = np.abs(energy - exact_value) / abs(exact_value)
    bottom.semilogy(steps, np.maximum(relative, 1e-12), lw=1)
    bottom.set_ylabel("|E - E0| / |E0|")
  else:
    bottom.semilogy(steps, [r["variance"] for r in rows], lw=1)
    bottom.set_ylabel("variance of E_loc")
  top.set_ylabel("energy")
  top.set_title(title)
  top.legend()
  bottom.set_xlabel("step")
  for ax in (top, bottom):
    ax.grid(alpha=0.3)
  fig.tight_layout()
  workdir_lib.atomic_write(path,
                           lambda f: fig.savefig(f, format="png", dpi=100))
  plt.close(fig)

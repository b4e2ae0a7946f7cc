"""Pytrees as named arrays: each leaf under its tree path, checked on return.

Checkpoints, trained models and transferred parameters store a tree as
{path: array}, the path as `jax.tree_util.keystr` writes it
(`.params['arnn_dense/~/layer_0']['kernel']`), so that a tree whose
structure changed is refused by name instead of being filled by position.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp


class TreeMismatch(ValueError):
  """Stored arrays that do not fit a tree: a path missing, in excess, or of
  another shape or dtype."""


def by_path(tree) -> dict[str, Any]:
  """{tree path: leaf}, in the tree's order."""
  return {jax.tree_util.keystr(path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def from_paths(template, arrays: Mapping[str, Any], source: str,
               check_dtype: bool = True):
  """The tree of `template` (arrays or ShapeDtypeStructs) with the leaves of
  `arrays`, {path: array}.

  Raises:
    TreeMismatch: naming the first path of `template` that `arrays` lacks or
      holds with another shape (or dtype), or the first path it holds in
      excess; `source` names where the arrays came from.
  """
  specs = by_path(template)
  for name, spec in specs.items():
    if name not in arrays:
      raise TreeMismatch(
          f"{source} has no array {name}, which the tree to fill holds "
          f"({tuple(spec.shape)} {jnp.dtype(spec.dtype).name}); it holds "
          f"{', '.join(sorted(arrays)) or 'nothing'}")
    leaf = arrays[name]
    if tuple(leaf.shape) != tuple(spec.shape) or (
        check_dtype and jnp.dtype(leaf.dtype) != jnp.dtype(spec.dtype)):
      raise TreeMismatch(
          f"{source}: {name} has shape {tuple(leaf.shape)} and dtype "
          f"{jnp.dtype(leaf.dtype).name}; expected {tuple(spec.shape)} "
          f"{jnp.dtype(spec.dtype).name}")
  extra = sorted(set(arrays) - set(specs))
  if extra:
    raise TreeMismatch(
        f"{source} holds {extra[0]}, which the tree to fill does not have")
  return jax.tree.unflatten(jax.tree.structure(template),
                            [jnp.asarray(arrays[name]) for name in specs])

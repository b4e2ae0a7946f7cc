"""The family table is the one place a family is declared: a body module's
`RECORDS` reach the constructors, the configs and the shared test cases
(zoo.models.record, zoo.models.families)."""

import os
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np

import zoo
from zoo import models
from zoo.models import families
from configs import families as config_families
from tests import helpers

# A body module that only declares a record: the masked dense body under a
# new name, as a new family's module would.
TOY_MODULE = '''
from zoo.models.arnn import DenseStack
from zoo.models.record import MASKED, Family

RECORDS = (Family(name="toy_dense", title="ToyDense",
                  body=DenseStack, fields=MASKED,
                  masked_widths=True, size_dependent=True,
                  example=dict(layers=2, features=3)),)
'''


class _module:
  """A module of zoo.models holding `source`, for the `with` block only."""

  def __init__(self, name, source):
    self.name, self.source = name, source

  def __enter__(self):
    self.folder = tempfile.TemporaryDirectory()
    with open(os.path.join(self.folder.name, self.name + ".py"), "w") as f:
      f.write(textwrap.dedent(self.source))
    models.__path__.append(self.folder.name)

  def __exit__(self, *exc):
    models.__path__.remove(self.folder.name)
    sys.modules.pop(f"zoo.models.{self.name}", None)
    self.folder.cleanup()


class FamilyTableTest(absltest.TestCase):

  def test_a_body_module_with_a_record_joins_the_table(self):
    with _module("toy_family", TOY_MODULE):
      table = families._gather()
    self.assertEqual(list(table)[:len(families.FAMILIES)],
                     list(families.FAMILIES))
    toy = table["toy_dense"]
    with mock.patch.dict(families.FAMILIES, {"toy_dense": toy}):
      model = families._constructor(toy, True)(zoo.spin_half(4),
                                                **toy.example)
      params, _ = model.init(jax.random.key(0))
      x = zoo.spin_half(4).all_states()
      psi2 = np.exp(2 * np.asarray(model.log_psi(params, x)).real)
    self.assertEqual(sorted(params), ["arnn_toy_dense/~/layer_0",
                                      "arnn_toy_dense/~/layer_1"])
    np.testing.assert_allclose(psi2.sum(), 1.0, rtol=1e-12)

  def test_a_record_twice_is_refused(self):
    with _module("toy_twice", TOY_MODULE.replace("toy_dense", "dense")):
      with self.assertRaisesRegex(ValueError, "'dense' is declared twice"):
        families._gather()

  def test_every_reader_follows_the_table(self):
    names = list(models.FAMILIES)
    self.assertEqual(list(helpers.FAMILY_FIELDS), names)
    self.assertEqual(list(helpers.SLOW_FAST), names)
    self.assertEqual(set(models.FAMILY_FIELDS), set(names))
    for name, record in models.FAMILIES.items():
      slow, fast = models.CONSTRUCTORS[name]
      # One scheme: ARNN<title> and FastARNN<title>, the older names the
      # same functions.
      self.assertEqual((slow.__name__, fast.__name__),
                       ("ARNN" + record.title, "FastARNN" + record.title))
      self.assertIs(getattr(zoo, record.fast), fast)
      self.assertIs(getattr(models, record.slow), slow)
      for alias, constructor in zip(record.aliases or (), (slow, fast)):
        self.assertIs(getattr(zoo, alias), constructor)
      self.assertLessEqual(set(record.example), set(record.fields), name)

  def test_every_family_has_a_registered_variant(self):
    registered = {get_config().model.family
                  for get_config in config_families.VARIANTS.values()}
    self.assertEqual(registered, set(models.FAMILIES))


if __name__ == "__main__":
  absltest.main()

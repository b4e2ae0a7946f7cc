"""The XLA options set at import (zoo.xla_flags)."""

import os
import tempfile

from absl.testing import absltest

from zoo import xla_flags


class XlaFlagsTest(absltest.TestCase):

  def test_adds_the_vector_width_only_with_avx512(self):
    self.assertEqual(xla_flags.flags_with_vector_width("", True),
                     "--xla_cpu_prefer_vector_width=512")
    self.assertEqual(xla_flags.flags_with_vector_width("--xla_foo=1", True),
                     "--xla_foo=1 --xla_cpu_prefer_vector_width=512")
    self.assertEqual(xla_flags.flags_with_vector_width("--xla_foo=1", False),
                     "--xla_foo=1")

  def test_never_overrides_a_width_the_user_set(self):
    flags = "--xla_cpu_prefer_vector_width=256"
    self.assertEqual(xla_flags.flags_with_vector_width(flags, True), flags)

  def test_opt_out_leaves_the_environment_alone(self):
    environ = {"ARNN_ZOO_XLA_FLAGS": "0", "XLA_FLAGS": "--xla_foo=1"}
    xla_flags.apply(environ)
    self.assertEqual(environ, {"ARNN_ZOO_XLA_FLAGS": "0", "XLA_FLAGS": "--xla_foo=1"})

  def test_apply_matches_the_cpu(self):
    environ = {}
    xla_flags.apply(environ)
    expected = "--xla_cpu_prefer_vector_width=512" if xla_flags.has_avx512() else None
    self.assertEqual(environ.get("XLA_FLAGS"), expected)

  def test_reads_avx512_from_cpuinfo(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "cpuinfo")
      with open(path, "w") as f:
        f.write("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512dq\n")
      self.assertTrue(xla_flags.has_avx512(path))
      with open(path, "w") as f:
        f.write("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
      self.assertFalse(xla_flags.has_avx512(path))
      self.assertFalse(xla_flags.has_avx512(os.path.join(d, "missing")))


if __name__ == "__main__":
  absltest.main()

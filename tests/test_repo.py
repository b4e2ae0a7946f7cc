"""The README's two commands and CI stay in step."""

import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
  return [line for line in block.splitlines() if line.strip()]


class RepoTest(unittest.TestCase):

  def test_readme_opens_with_two_commands(self):
    with open(os.path.join(ROOT, "README.md")) as f:
      head = f.read().split("```bash", 1)[0]
    self.assertEqual(head.strip().count("\n"), 0, "the commands come first")
    self.assertEqual(len(readme_commands()), 2)

  def test_ci_runs_the_readme_test_command(self):
    with open(os.path.join(ROOT, ".ci", "run")) as f:
      ci = [line.strip() for line in f]
    self.assertIn(readme_commands()[1], ci)


if __name__ == "__main__":
  unittest.main()

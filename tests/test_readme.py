"""The README's commands are the ones CI and users run."""
import os
import re

from conftest import ROOT


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def test_ci_runs_the_readme_test_command():
    test_command = bash_blocks(read("README.md"))[1].strip()
    assert "pytest" in test_command
    assert test_command in read(".ci/run").splitlines()


def test_readme_tools_and_configs_exist():
    text = read("README.md")
    for path in sorted(set(re.findall(r"(?:tools|configs|benchmarks)/[\w./]+\.(?:py|yaml)", text))):
        assert os.path.isfile(os.path.join(ROOT, path)), path

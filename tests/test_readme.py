"""The docs' commands are the ones CI and users run: README.md, docs/*.md and benchmarks/results/*.md name
files that exist, link to pages and headings that exist, and show tool commands that the tools' own parsers
accept, with configs that load."""
import argparse
import glob
import importlib
import os
import re
import shlex

import pytest

from conftest import ROOT

README_MAX_LINES = 250
DOCS = ["README.md"] + sorted(os.path.relpath(path, ROOT) for pattern in ("docs/*.md", "benchmarks/results/*.md")
                              for path in glob.glob(os.path.join(ROOT, pattern)))
# A path into the repository, starting at a word boundary (not the tail of tests/fixtures/.../configs/x.yaml).
REPO_PATH = re.compile(r"(?<![\w./-])((?:tools|configs|benchmarks|docs|tests|paddle_resnet)/[\w./-]*[\w/])")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TOOL_SCRIPT = re.compile(r"^tools/(\w+)\.py$")
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def bash_blocks(text):
    return BASH_BLOCK.findall(text)


def without_code_blocks(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def heading_anchors(text):
    """GitHub's anchors for the headings of a markdown page: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered from -1."""
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", without_code_blocks(text), re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def command_lines(doc):
    """The shell commands of a page's bash blocks, each as (line number, tokens): continuation lines joined,
    ``a && b`` split, comments dropped."""
    text = read(doc)
    for block in BASH_BLOCK.finditer(text):
        line_number = text.count("\n", 0, block.start(1)) + 1
        for command in re.split(r"(?<!\\)\n", block.group(1)):
            tokens = shlex.split(command.replace("\\\n", " "), comments=True)
            while tokens:
                end = tokens.index("&&") if "&&" in tokens else len(tokens)
                yield line_number, tokens[:end]
                tokens = tokens[end + 1:]
            line_number += command.count("\n") + 1


def cli_module(program):
    """The paddle_resnet.cli module that ``tools/<tool>.py`` (read from its import line), ``paddle-resnet
    <command>`` or ``python -m paddle_resnet.cli.<tool>`` runs; None for a listing command."""
    from paddle_resnet.cli import COMMANDS
    if TOOL_SCRIPT.match(program):
        assert os.path.isfile(os.path.join(ROOT, program)), f"{program} does not exist"
        found = re.search(r"^ *from (paddle_resnet\.cli\.\w+) import main$", read(program), re.M)
        assert found, f"{program} does not run a paddle_resnet.cli module"
        return found.group(1)
    if program.startswith("paddle-resnet "):
        command = program.split()[1]
        assert command in COMMANDS, f"{program}: not a paddle-resnet command"
        module = COMMANDS[command][0]
        return module and f"paddle_resnet.cli.{module}"  # None: a listing (paddle-resnet models), no options
    return program


LAUNCHER = "tools/launch.py"


def tool_invocation(tokens):
    """(program, its arguments) of a command that runs one of the tools, else None. A launcher in front
    (``paddle.distributed.launch``, ``tools/launch.py``) runs the tool after it."""
    for i, token in enumerate(tokens):
        if TOOL_SCRIPT.match(token) and token != LAUNCHER:
            return token, tokens[i + 1:]
    if tokens[:1] == ["paddle-resnet"] and len(tokens) > 1:
        return f"paddle-resnet {tokens[1]}", tokens[2:]
    if tokens[:2] == ["python", "-m"] and len(tokens) > 2 and tokens[2].startswith("paddle_resnet.cli."):
        return tokens[2], tokens[3:]
    return None


def tool_commands():
    for doc in DOCS:
        for line, tokens in command_lines(doc):
            invocation = tool_invocation(tokens)
            if invocation:
                yield pytest.param(*invocation, id=f"{doc}:{line}")


class Parsed(Exception):
    def __init__(self, namespace):
        super().__init__("parsed")
        self.namespace = namespace


def parse_with_the_tools_parser(module, argv, monkeypatch):
    """The namespace the tool's own argparse parser makes of ``argv``, without running the tool: its
    ``parse_args`` when it has one, else its ``main`` stopped right after parsing."""
    if hasattr(module, "parse_args"):
        return module.parse_args(argv)
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        module.main(argv)
    except Parsed as parsed:
        return parsed.namespace
    finally:
        monkeypatch.undo()
    pytest.fail(f"{module.__name__}.main returned without parsing its arguments")


def check_config(module, args):
    """The -c config loads with the -o overrides: a PaddleClas deploy config for predict, else a training
    config through load_config (data paths need not exist)."""
    if not getattr(args, "config", None):
        return
    if hasattr(module, "apply_deploy_config"):
        module.apply_deploy_config(args)
    else:
        from paddle_resnet.config import load_config
        load_config(args.config, args.override)


# ---------------------------------------------------------------------------------------------------------------

def test_ci_runs_the_readme_test_command():
    test_command = bash_blocks(read("README.md"))[1].strip()
    assert "pytest" in test_command
    assert test_command in read(".ci/run").splitlines()


def test_readme_is_a_front_door():
    lines = read("README.md").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the details into docs/"


def test_the_docs_are_all_checked():
    assert {"README.md", "docs/training.md", "docs/deployment.md", "docs/CHANGELOG.md",
            "benchmarks/results/bench_train.md"} <= set(DOCS)


@pytest.mark.parametrize("doc", DOCS)
def test_named_paths_exist(doc):
    missing = sorted({path for path in REPO_PATH.findall(read(doc))
                      if not os.path.exists(os.path.join(ROOT, path))})
    assert not missing, f"{doc} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_reach_a_file_and_heading(doc):
    broken = []
    for target in MARKDOWN_LINK.findall(without_code_blocks(read(doc))):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        if not os.path.exists(os.path.join(ROOT, linked)):
            broken.append(f"{target} (no {linked})")
        elif anchor and linked.endswith(".md") and anchor not in heading_anchors(read(linked)):
            broken.append(f"{target} (no heading #{anchor} in {linked})")
    assert not broken, f"{doc}: broken links: {broken}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_naming_a_tool_is_checked(doc):
    """A line that mentions a tool but is not recognised as running one would escape the parser check."""
    unrecognised = [(line, " ".join(tokens)) for line, tokens in command_lines(doc)
                    if any(t.startswith("tools/") or t == "paddle-resnet" for t in tokens)
                    and not tool_invocation(tokens)]
    assert not unrecognised


@pytest.mark.parametrize("program,argv", list(tool_commands()))
def test_doc_command_parses_and_its_config_loads(program, argv, monkeypatch, capsys):
    module_name = cli_module(program)
    if module_name is None:
        assert not argv, f"{program} takes no arguments"
        return
    module = importlib.import_module(module_name)
    try:
        args = parse_with_the_tools_parser(module, argv, monkeypatch)
    except SystemExit as stop:
        pytest.fail(f"{program} refuses {argv} (exit {stop.code}): {capsys.readouterr().err.strip()}")
    check_config(module, args)

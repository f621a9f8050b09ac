"""Help texts: one-line command summaries, --version, and an Examples block that uses every option of warp."""

import re
import shlex

from click.testing import CliRunner

import stntool
from stntool.cli import cli
from stntool.commands.warp import warp


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_group_help_lists_commands_with_one_line_summaries():
    r = invoke("--help")
    assert r.exit_code == 0 and r.stderr == ""
    commands = r.stdout.split("Commands:")[1].strip().splitlines()
    assert commands, r.stdout
    for line in commands:
        name, summary = line.strip().split(None, 1)
        assert name in cli.commands
        assert not summary.endswith("...") and summary.endswith(".")  # a whole sentence, not a cut one
    assert set(cli.commands) == {line.split()[0] for line in commands}
    assert invoke("-h").stdout == r.stdout


def test_version():
    for flag in ("--version", "-V"):
        r = invoke(flag)
        assert r.exit_code == 0 and r.stdout.strip() == f"stntool, version {stntool.__version__}"
        assert r.stderr == ""


def example_blocks(text):
    """[(group title, [example command lines])] from the Examples epilog (blocks are separated by blank lines)."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.split("Examples:")[1].strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        title = " ".join(line for line in lines if "stntool warp" not in line)
        blocks.append((title, [line[line.index("stntool warp"):] for line in lines if "stntool warp" in line]))
    return blocks


def test_warp_help_has_examples_for_every_option_group_and_option():
    r = invoke("warp", "--help")
    assert r.exit_code == 0 and r.stderr == ""
    blocks = example_blocks(r.stdout)
    assert len(blocks) >= 4 and all(title and exs for title, exs in blocks), blocks
    examples = [ex for _, exs in blocks for ex in exs]
    used = set()
    for ex in examples:
        cmd = ex.split(" | ")[0].split(" > ")[0]
        argv = shlex.split(cmd)[2:]  # drop "stntool warp"
        used.update(a for a in argv if re.match(r"--?[a-zA-Z0-9]", a) and not re.match(r"-[\d.]", a))
        # every example parses: known options with valid values
        ctx = warp.make_context("warp", list(argv), resilient_parsing=False)
        assert ctx.params["output"] is not None
    long_or_short = {o for p in warp.params for o in p.opts}
    missing = [p.opts[-1] for p in warp.params
               if p.opts[0].startswith("-") and p.name != "help" and not used & set(p.opts)]
    assert not missing, f"options without an example: {missing}"
    for title, exs in blocks:  # each group's title names options its examples use
        named = set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", title))
        assert named, title
        assert named <= long_or_short, named - long_or_short
    assert used <= long_or_short | {"-"}, used - long_or_short
    assert re.search(r"Exit status: 0 all ok, 1 some inputs failed, 2 usage error", " ".join(r.stdout.split()))

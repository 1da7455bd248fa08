"""The README renders and its commands work: balanced code fences, every ``scalefree ...`` command
parses through the real CLI, the first training run trains, and the install story holds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import tomllib

from scalefree.cli import build_parser, main
from scalefree.sweep.cli import check_control
from scalefree.sweep.grid import make_sweep
from scalefree.train.cli import config_from_args

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")


def code_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of every fenced block; fails on a broken fence."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if not m:
            if current is not None:
                current[2].append(line)
            continue
        if current is None:
            language = m.group(3).strip()
            # A bare opening fence is how a missing closing fence shows: the next block's opener
            # closes the previous block and the text between them renders as code.
            assert language, f"README line {number}: a code block opens without a language"
            current = (language, number, [])
        else:
            assert not m.group(3).strip(), f"README line {number}: closing fence with text"
            blocks.append(current)
            current = None
    assert current is None, f"README line {current[1]}: code block never closed"
    return blocks


def commands(lines: list[str]) -> list[str]:
    """Shell commands of a block: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in lines:
        line = re.sub(r"\s+#.*$", "", line).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            out.append(full)
    assert not pending, "a continuation line ends the block"
    return out


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = []
    for language, _, lines in code_blocks(text):
        if language in ("bash", "sh", "shell", "console"):
            found += [c for c in commands(lines) if c.startswith("scalefree ")]
    return found


def test_fences_are_balanced_and_name_a_language() -> None:
    blocks = code_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    # Headings and prose stay outside code: no block holds a Markdown heading.
    for language, start, lines in blocks:
        if language != "python":
            assert not [ln for ln in lines if re.match(r"^#{1,4} [A-Z]", ln)], start


def test_the_paper_experiments_section_renders_its_commands_as_code() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Paper experiments", 1)[1].split("\n### ", 1)[0]
    (block,) = [b for b in code_blocks(section)]
    assert any("reproduce fig3" in line for line in block[2])
    assert "### Sweeps" in text and "`fig2` .. `fig6`" in section.split("```")[-1]


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_a_newcomer_runs() -> None:
    joined = "\n".join(COMMANDS)
    for needle in ("reproduce quadratic", "train --dataset synthetic", "train --dataset CIFAR10"):
        assert needle in joined
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("command", COMMANDS)
def test_every_scalefree_command_parses(command: str) -> None:
    """Parsed by the real parser (an unknown flag or bad choice exits 2) and, for train and
    sweep, turned into the validated run configuration, without running anything."""
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)
    assert callable(args.func)
    if args.command == "train":
        config_from_args(args)
    elif args.command == "sweep":
        check_control(args)
        base = config_from_args(args, progress="none")
        sweep = make_sweep(
            base, args.optim_methods, args.eta0_vals, args.weight_decay_vals, args.seeds
        )
        assert sweep.configs()


def test_the_first_training_run_trains_without_a_dataset(tmp_path, monkeypatch, capsys) -> None:
    (first,) = [
        c for c in COMMANDS if "--dataset synthetic" in c and c.startswith("scalefree train")
    ]
    argv = shlex.split(first)[1:]
    monkeypatch.chdir(tmp_path)  # no data/ folder here, and nothing is downloaded
    assert main([*argv, "--max-steps", "2", "--progress", "plain"]) == 0
    out = capsys.readouterr().out
    assert "status: completed" in out
    assert (tmp_path / "logs" / "first").is_dir() and not (tmp_path / "data").exists()


def test_the_light_install_leaves_the_cluster_executors_to_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "ray" not in core and "submitit" not in core
    assert any(d.startswith("ray") for d in extras["ray"])
    assert any(d.startswith("submitit") for d in extras["slurm"])
    # The README's one setup command (.[dev]) still installs what the tests use.
    dev = " ".join(extras["dev"])
    assert "ray" in dev and "submitit" in dev and "pytest" in dev


@pytest.mark.parametrize(("executor", "module"), [("ray", "ray"), ("slurm", "submitit")])
def test_a_missing_extra_is_named(executor, module, monkeypatch, tmp_path, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    argv = ["sweep", "--dataset", "synthetic", "--log-folder", str(tmp_path), "--executor"]
    assert main([*argv, executor]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'scalefree[{executor}]'" in err and f"'.[{executor}]'" in err
    assert not any(tmp_path.iterdir())  # stopped before planning or writing anything

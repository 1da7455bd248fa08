"""docs/training-loop.md's three integration examples, run as written (temporary folders
redirected here), and their run directories drawn by ``scalefree plot histogram``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.train.stats import load_stats

DOC = Path(__file__).resolve().parents[2] / "docs" / "training-loop.md"


def examples() -> dict[str, str]:
    section = DOC.read_text().split("## Statistics in any training loop", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    return dict(zip(("plain", "hf", "lightning"), blocks))


@pytest.mark.parametrize(
    ("name", "needs"),
    [("plain", ()), ("hf", ("transformers", "accelerate")), ("lightning", ("lightning",))],
)
def test_the_documented_example_runs_and_its_run_is_drawn(tmp_path, capsys, name, needs):
    for module in needs:
        pytest.importorskip(module)
    code = examples()[name].replace("tempfile.mkdtemp()", repr(str(tmp_path)))
    exec(compile(code, f"training-loop.md ({name})", "exec"), {"__name__": "example"})
    stats = load_stats(tmp_path / name)
    assert sorted(set(stats.epoch.tolist())) == [1, 2]
    assert (tmp_path / name / "result.json").exists()
    png = tmp_path / "hist.png"
    assert main(["plot", "histogram", str(tmp_path), "--out", str(png)]) == 0
    assert png.exists()
    if name == "plain":
        assert capsys.readouterr().out.splitlines()[0] == "8"
        assert (tmp_path / name / "diagnose_init.json").exists()

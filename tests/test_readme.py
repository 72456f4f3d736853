"""The README's quickstart runs as pasted (docs that cannot rot)."""

import re
from pathlib import Path


def test_quickstart_runs(tmp_path, monkeypatch, capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md quickstart", "exec"), {})
    out = capsys.readouterr().out.split("\n")
    assert out[0] == "[0 1 2 3 4]" and out[1] == "True"
    assert (tmp_path / "example.deg").exists()

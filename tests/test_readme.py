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


def test_coming_from_table_holds_for_the_installed_peers():
    """The README's table says what each library does when it finds fewer than k results and
    how it orders its output; check that against the peers installed here."""
    import numpy as np
    import pytest

    import deg

    x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=2, progress=False)
    labels, dists = index.search(x[0], k=8)  # (labels, distances), padded
    assert labels.dtype == np.int64 and (labels[0, 5:] == -1).all()
    assert np.isinf(dists[0, 5:]).all() and dists[0, 0] == 0  # squared L2, ascending
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
    if hnswlib is not None:
        h = hnswlib.Index(space="l2", dim=4)
        h.init_index(max_elements=5, M=4)
        h.add_items(x)
        with pytest.raises(RuntimeError):
            h.knn_query(x[:1], k=8)
        ids, d = h.knn_query(x[:1], k=2)  # (labels, distances), squared
        assert ids[0, 0] == 0 and d[0, 1] == pytest.approx(((x[0] - x[ids[0, 1]]) ** 2).sum())
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        f = faiss.IndexHNSWFlat(4, 4)
        f.add(x)
        d, ids = f.search(x[:1], 8)  # (D, I)
        assert (ids[0, 5:] == -1).all() and ids[0, 0] == 0

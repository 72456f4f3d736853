"""Removal with repair and continuous edge optimisation (docs/algorithm.md, "Removal" and
"Optimisation"): what keeps a changing graph even-regular, connected and short-edged."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from deg._kernels import optimize as kopt
from deg._kernels import remove as kremove
from deg._kernels import search as ksearch

OPTIMIZE_CHUNK = 500  # improvement tries per kernel call (between time/progress checks)


class Maintainer:
    """Removes vertices from and optimises an index's parts; owns the random stream of the
    improvement tries (saved with the index). The caller keeps other writers out; the changes
    are made in exclusive steps of ``steps`` (``deg._concurrency.Steps``)."""

    def __init__(self, params, store, tree, basis_, view, pool, steps):
        self.params, self.store, self.tree, self.basis = params, store, tree, basis_
        self.view, self.pool, self.steps = view, pool, steps
        # splitmix64 stream for the random improvement tries; saved with the index
        self.rand_state = np.array([params.seed & (2**64 - 1)], dtype=np.uint64)

    def remove(self, arr) -> None:
        """Remove the labels ``arr`` (present, distinct): each in one step, the optimisation
        of its repair's new edges in further steps (a removal's optimisation is most of its
        time: ~2 ms on Fashion-MNIST). The distances its repair pairs by are computed before
        its step (``kremove.plan_removal``: it only reads), beside the searches."""
        self.view.editing()
        store, d = self.store, self.store.d
        new_edges = np.empty((d, 2), dtype=np.int64)
        new_w = np.empty(d, dtype=np.float32)
        ids = np.empty(d, dtype=np.int64)
        dist = np.empty((d, d), dtype=np.float32)
        try:
            with self.scratch() as (opt, scr, log, owner, touched):

                def optimisation(a, b):
                    kremove.improve_repair(
                        self.store.graph(), new_edges, new_w, a, b, opt, scr, log
                    )

                for label in arr.tolist():
                    vid = int(store.vid_of.find([label], store.labels)[0])
                    planned = kremove.plan_removal(store.graph(), store.n, vid, ids, dist)
                    with self.steps.step():
                        n_before = self.store.n
                        plan = (planned, ids, dist)
                        vid, made = self.remove_one(label, owner, touched, new_edges, new_w, plan)
                        # the tree's members renumbered, or the tree drawn again once it must
                        if not self.tree.after_removals([vid], n_before, self.store.n):
                            self.tree.redraw_for(self.store, self.basis, self.params.seed)
                    self.steps.run(optimisation, made, "repair")
        finally:
            with self.steps.step():
                self.view.changed(self.store, arr.size)
            self.view.catch_up(self.store, self.steps)

    def remove_one(self, label, owner, touched, new_edges, new_w, plan) -> tuple:
        """Remove one label: its vertex goes, the last vertex takes its id, the graph is
        repaired (its new edges, to optimise, in ``new_edges``/``new_w``, d rows; ``plan``:
        ``kremove.plan_removal``'s for it, on the graph as it is). Returns the freed id and
        the number of new edges."""
        store = self.store
        if new_edges.shape[0] < store.d or new_w.shape[0] < store.d:
            raise ValueError("repair edge rows shorter than d (an internal error)")
        vid = store.vid_of.pop(label, store.labels)
        n = store.n
        status, made = kremove.remove_and_restore(
            store.graph(), store.labels, n, vid, owner, touched, new_edges, new_w, plan
        )
        if vid != n - 1:  # another vector behind id vid: rows listing it are ordered again
            store.vid_of.move(n - 1, vid, store.labels)
            store.gen[vid] = store.next_generation()
            store.codes[vid] = store.codes[n - 1]  # its codes follow it (none: 0 columns)
        store.labels[n - 1] = -1
        store.n = n - 1
        store.changes += 1
        if status != kremove.OK:
            raise RuntimeError(
                f"internal error: graph repair after removing label {label} failed (code {status})"
            )
        return vid, made

    def optimize(self, tries, seconds, progress) -> dict:
        """Improvement tries until ``tries`` are made or ``seconds`` have passed."""
        store = self.store
        before = store.aew()
        done = improved = 0
        self.view.editing()
        deadline = None if seconds is None else time.monotonic() + seconds
        bar = None
        if progress and tries:
            from tqdm.auto import tqdm

            bar = tqdm(total=tries, desc="deg optimize", unit="try")
        try:
            while store.n > store.d + 1:
                if tries is not None and done >= tries:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                step = OPTIMIZE_CHUNK if tries is None else min(OPTIMIZE_CHUNK, tries - done)
                improved += self.improve(step)
                done += step
                if bar is not None:
                    bar.update(step)
        finally:
            with self.steps.step():
                self.view.changed(store, done)
            self.view.catch_up(store, self.steps)
            if bar is not None:
                bar.close()
        return {"tries": done, "improved": improved, "aew_before": before, "aew_after": store.aew()}

    def improve(self, tries) -> int:
        """``tries`` random improvement tries, a few per step; how many changed the graph."""
        improved = 0

        def step(a, b):
            nonlocal improved
            improved += kopt.improve_many(
                self.store.graph(), self.store.n, b - a, opt, scr, log, self.rand_state
            )

        with self.scratch() as (opt, scr, log, _, _):
            self.steps.run(step, tries, "improve")
        return improved

    @contextlib.contextmanager
    def scratch(self):
        """Single-thread scratch for the optimisation and repair kernels: the plain tuples of
        ``OptSpec``, ``OptScratch`` and ``EditLog``, and the repair's owner and touched
        arrays."""
        p = self.params
        k = max(p.improve_k, 1)
        opt = (p.improve_k, p.improve_eps, p.max_path_length)
        size = kopt.log_capacity(p.max_path_length)
        log = (
            np.empty(size, np.int32),
            np.empty(size, np.int32),
            np.empty(size, np.int32),
            np.empty(size, np.float32),
        )
        with self.pool.take(self.store.capacity, 1) as s:
            scr = (
                s.visited[0],
                s.tags[0],
                s.cand[0],
                np.empty(k + 4, np.float32),
                np.empty(k + 4, np.int32),
                np.empty(k + 4, np.float32),
                np.empty(k + 4, np.int32),
                np.empty(self.store.d, np.int32),
                np.empty(ksearch.GROUP_MAX, np.int32),
                np.empty(ksearch.GROUP_MAX, np.float32),
            )
            yield opt, scr, log, s.owner, s.touched

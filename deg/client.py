"""``deg.client.Client``: the retrieval service (``deg serve``) with ``Index``'s method names.

    >>> from deg.client import Client                      # doctest: +SKIP
    >>> c = Client("http://127.0.0.1:8000", token=None)     # doctest: +SKIP
    >>> labels, dists = c.search(queries, k=10)             # doctest: +SKIP

Standard library only (``http.client``), one keep-alive connection per thread. Vectors go as
float32 bytes (``binary=True``, the default) or JSON. An error reply raises what ``Index``
would have raised: ``KeyError`` (404), ``ValueError`` (409, 413, 422), ``PermissionError``
(401), ``RuntimeError`` otherwise (``ServiceError``, with the status); a lost connection is
an ``OSError`` (``ConnectionError``, a timeout), after which a write may or may not have been
applied (searches and reads are sent again once on a fresh connection).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import urllib.parse

import numpy as np

OCTET = "application/octet-stream"


class ServiceError(RuntimeError):
    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class Client:
    """A connection to a deg service at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0, binary=True):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url must be http://host:port, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout, self.binary = timeout, binary
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._local = threading.local()
        self._conns = []  # every thread's connection, for close()
        self._conns_lock = threading.Lock()
        self._info = None

    # ------------------------------------------------------------------ transport

    def _request(self, method, path, body=None, headers=None, raw=False):
        head = dict(self._headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            head["Content-Type"] = "application/json"
        head.update(headers or {})
        # a kept-alive connection the server closed: once more, but only for a request that
        # changes nothing (a write may have been applied before the connection went)
        retry = method == "GET" or path.startswith(("/search", "/explore"))
        for attempt in range(2 if retry else 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
                with self._conns_lock:
                    self._conns.append(conn)
            try:
                conn.request(method, path, body=body, headers=head)
                resp = conn.getresponse()
                data = resp.read()
                break
            except Exception as e:  # a timeout too: the connection is in no known state
                conn.close()
                self._local.conn = None
                lost = isinstance(e, (ConnectionError, http.client.HTTPException))
                if lost and retry and not attempt:
                    continue
                if isinstance(e, http.client.HTTPException):  # one kind for a lost connection
                    raise ConnectionError(
                        f"{method} {path}: the connection failed ({e!r})"
                        + ("" if retry else "; the write may or may not have been applied")
                    ) from e
                raise
        if resp.status >= 400:
            raise _error(resp.status, data)
        if raw:
            return resp, data
        return json.loads(data) if data else None

    def _rows(self, path, x, params, extra=None):
        """POST float32 rows, reading back (labels, distances)."""
        if self.binary and extra is None:
            q = urllib.parse.urlencode(params)
            resp, data = self._request(
                "POST",
                f"{path}?{q}",
                body=np.ascontiguousarray(x, dtype="<f4").tobytes(),
                headers={
                    "Content-Type": OCTET,
                    "Accept": OCTET,
                    "X-Deg-Shape": f"{x.shape[0]},{x.shape[1]}",
                },
                raw=True,
            )
            return _binary_answer(resp, data)
        body = {"vectors": x.tolist(), **params, **(extra or {})}
        return _json_answer(self._request("POST", path, body))

    # ------------------------------------------------------------------ Index's methods

    def search(
        self,
        queries,
        k: int = 10,
        eps: float | None = None,
        filter=None,
        exclude=None,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As ``Index.search``; ``filter`` and ``exclude`` are arrays of labels."""
        x = _matrix(queries)
        extra = {}
        if filter is not None:
            extra["filter"] = np.asarray(filter, dtype=np.int64).tolist()
        if exclude is not None:
            extra["exclude"] = np.asarray(exclude, dtype=np.int64).tolist()
        params = _given(k=k, eps=eps, recall=recall)
        return self._rows("/search", x, params, extra or None)

    def explore(
        self,
        entry_labels,
        k: int = 10,
        eps: float | None = None,
        include_entry: bool = False,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = np.atleast_1d(np.asarray(entry_labels, dtype=np.int64)).tolist()
        body = {"labels": labels, "include_entry": include_entry}
        body.update(_given(k=k, eps=eps, recall=recall))
        return _json_answer(self._request("POST", "/explore", body))

    def add(self, data, labels=None, upsert: bool = False) -> np.ndarray:
        """As ``Index.add``: returns the labels (int64), once the write is durable."""
        x = _matrix(data)
        if self.binary and labels is not None:
            lab = np.ascontiguousarray(labels, dtype="<i8").reshape(-1)
            body = lab.tobytes() + np.ascontiguousarray(x, dtype="<f4").tobytes()
            head = {"Content-Type": OCTET, "X-Deg-Shape": f"{x.shape[0]},{x.shape[1]}"}
            out = self._request("PUT", f"/vectors?upsert={str(upsert).lower()}", body, head)
        else:
            body = {"vectors": x.tolist(), "upsert": upsert}
            if labels is not None:
                body["labels"] = np.asarray(labels, dtype=np.int64).reshape(-1).tolist()
            out = self._request("PUT", "/vectors", body)
        return np.asarray(out["labels"], dtype=np.int64)

    def remove(self, labels) -> None:
        arr = np.atleast_1d(np.asarray(labels, dtype=np.int64)).tolist()
        self._request("DELETE", "/vectors", {"labels": arr})

    def get_vectors(self, labels) -> np.ndarray:
        """Stored vectors (m, dim) float32, one request per label."""
        arr = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        rows = [self._request("GET", f"/vectors/{int(label)}")["vector"] for label in arr]
        return np.asarray(rows, dtype=np.float32).reshape(len(arr), self.dim)

    def __contains__(self, label) -> bool:
        try:
            self._request("GET", f"/vectors/{int(label)}")
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return self.stats(check_graph=False)["size"]

    @property
    def dim(self) -> int:
        return self._described()["dim"]

    @property
    def metric(self) -> str:
        return self._described()["metric"]

    @property
    def edges_per_vertex(self) -> int:
        return self._described()["edges_per_vertex"]

    # ------------------------------------------------------------------ the service's own

    def stats(self, check_graph: bool = False) -> dict:
        return self._request("GET", f"/stats?check_graph={str(check_graph).lower()}")

    def health(self) -> dict:
        return self._request("GET", "/health")

    def snapshot(self) -> dict:
        return self._request("POST", "/snapshot")

    def metrics(self) -> str:
        return self._request("GET", "/metrics", raw=True)[1].decode()

    def close(self) -> None:
        """Close every thread's connection (a later call opens a new one)."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def _described(self) -> dict:
        if self._info is None:
            self._info = self.stats(check_graph=False)
        return self._info


def _matrix(x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def _binary_answer(resp, data) -> tuple[np.ndarray, np.ndarray]:
    nq, k = (int(v) for v in resp.getheader("X-Deg-Shape").split(","))
    labels = np.frombuffer(data, dtype="<i8", count=nq * k).reshape(nq, k).astype(np.int64)
    dists = np.frombuffer(data, dtype="<f4", offset=8 * nq * k).reshape(nq, k).copy()
    return labels, dists


def _json_answer(out) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(out["labels"], dtype=np.int64)
    d = [[np.inf if v is None else v for v in row] for row in out["distances"]]
    return labels, np.asarray(d, dtype=np.float32).reshape(labels.shape)


def _error(status: int, data: bytes) -> Exception:
    try:
        detail = json.loads(data).get("detail", data.decode(errors="replace"))
    except (ValueError, AttributeError):
        detail = data.decode(errors="replace")
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    if status == 404:
        return KeyError(detail)
    if status in (409, 413, 422):
        return ValueError(f"HTTP {status}: {detail}")
    if status == 401:
        return PermissionError(detail)
    return ServiceError(status, detail)


def _given(**params) -> dict:
    """The parameters that were given (None: the server's default)."""
    return {key: value for key, value in params.items() if value is not None}

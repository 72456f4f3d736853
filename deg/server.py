"""The retrieval service: a durable deg index behind HTTP/JSON (``deg serve``).

    deg serve --dir DIR [--dim N --metric l2 ...] [--host 127.0.0.1] [--port 8000] [--token T]

FastAPI on uvicorn (``pip install 'dynamic-exploration-graph[serve]'``); the routes are
documented at ``/docs`` and in the README, "Retrieval service". Writes go to a write-ahead log
before they are acknowledged (``deg._durable``); searches run on the index's readers' side,
which writes only hold for short steps (``deg._concurrency.Steps``). Every route but
``/health`` asks for the bearer token when one is set. Bad input gets a 4xx naming what was
wrong and changes nothing: 422 bad vectors or parameters, 404 unknown labels, 409 labels
repeated or already present, 413 bodies or batches too large, 401 a missing or wrong token
(``/docs`` and ``/openapi.json`` describe the API and are open too).

Large batches may be sent as raw little-endian float32 (``Content-Type:
application/octet-stream``, the shape in ``X-Deg-Shape: rows,dim``; ``PUT /vectors`` sends
the int64 labels first); ``Accept: application/octet-stream`` on ``/search`` and
``/explore`` returns the int64 labels then the float32 distances, shape in ``X-Deg-Shape``.
"""

import hmac
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from deg._durable import IDLE, Durable, LabelConflict

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from starlette.concurrency import run_in_threadpool
except ImportError as e:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "the retrieval service needs FastAPI and uvicorn: "
        "pip install 'dynamic-exploration-graph[serve]'"
    ) from e

OCTET = "application/octet-stream"
# A read whose body is at most this long (a few queries) runs on the event loop itself: handing
# it to a worker thread and back costs two thread wake-ups and GIL hand-offs, more than a small
# search takes (bench/RESULTS.md); longer ones go to the thread pool, so they hold up no other.
INLINE_BYTES = 16 << 10
FLOAT32_MAX = float(np.finfo(np.float32).max)
# latency histogram buckets, seconds (Prometheus' le labels)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
ROUTES = ("/search", "/explore", "/vectors", "/vectors/{label}", "/stats", "/health")
ROUTES += ("/snapshot", "/metrics", "/docs", "/openapi.json")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger gets 413 (bodies, batches) or 422 (k)."""

    max_body_bytes: int = 64 << 20
    max_batch: int = 10_000
    max_k: int = 1000


class HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


# ---------------------------------------------------------------------- metrics


class Metrics:
    """Request counts and latency histograms per route, in Prometheus' text format. Updated
    from the event loop only (the ASGI wrapper), so without locks."""

    def __init__(self):
        self.counts: dict = {}
        self.hist: dict = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        h = self.hist.get((route, method))
        if h is None:
            h = self.hist[(route, method)] = [[0] * len(BUCKETS), 0, 0.0]
        for i, b in enumerate(BUCKETS):
            if seconds <= b:
                h[0][i] += 1
        h[1] += 1
        h[2] += seconds

    def text(self, durable: Durable) -> str:
        out = [
            "# HELP deg_requests_total HTTP requests by route, method and status.",
            "# TYPE deg_requests_total counter",
        ]
        for (route, method, status), c in sorted(self.counts.items()):
            out.append(
                f'deg_requests_total{{route="{route}",method="{method}",status="{status}"}} {c}'
            )
        out += [
            "# HELP deg_request_seconds HTTP request latency by route and method.",
            "# TYPE deg_request_seconds histogram",
        ]
        for (route, method), (buckets, count, total) in sorted(self.hist.items()):
            labels = f'route="{route}",method="{method}"'
            for b, c in zip(BUCKETS, buckets):
                out.append(f'deg_request_seconds_bucket{{{labels},le="{b}"}} {c}')
            out.append(f'deg_request_seconds_bucket{{{labels},le="+Inf"}} {count}')
            out.append(f"deg_request_seconds_sum{{{labels}}} {total:.6f}")
            out.append(f"deg_request_seconds_count{{{labels}}} {count}")
        s = durable.stats()
        gauges = {
            "deg_index_vectors": ("Vectors in the index.", len(durable.index)),
            "deg_index_bytes": ("Bytes the index holds.", durable.index.nbytes),
            "deg_wal_records": ("Log records since the last snapshot.", s["wal_records"]),
            "deg_wal_bytes": ("Bytes of the current log segment.", s["wal_bytes"]),
            "deg_wal_fsyncs_total": ("Log fsyncs since start.", s["wal_fsyncs"]),
        }
        for name, (doc, value) in gauges.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            out += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(out) + "\n"


class Measured:
    """ASGI wrapper: times every request and counts it by route template and status."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"]
            route = "/vectors/{label}" if path.startswith("/vectors/") else path
            if route not in ROUTES:
                route = "other"
            self.metrics.observe(route, scope["method"], status[0], time.perf_counter() - start)


# ---------------------------------------------------------------------- the application


def create_app(durable: Durable, token: str | None = None, limits: Limits | None = None):
    """The FastAPI application over ``durable`` (the caller owns and closes it)."""
    from deg import _api_models as models

    limits = limits or Limits()
    index = durable.index
    metrics = Metrics()
    app = FastAPI(
        title="deg retrieval service",
        description="A Dynamic Exploration Graph index: search, explore, add, remove.",
        version=_version(),
    )

    def authorized(request: Request) -> None:
        if token is None:
            return
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
            raise HTTPError(401, "missing or wrong bearer token (Authorization: Bearer ...)")

    async def body_of(request: Request) -> bytes:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limits.max_body_bytes:
            raise HTTPError(413, f"body of {size} bytes; at most {limits.max_body_bytes}")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_body_bytes:
                raise HTTPError(413, f"body over {limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def rows(count: int, what: str) -> None:
        if count > limits.max_batch:
            raise HTTPError(413, f"{count} {what} in one request; at most {limits.max_batch}")

    def k_of(k: int) -> int:
        if not 1 <= k <= limits.max_k:
            raise HTTPError(422, f"k must be in 1..{limits.max_k}, got {k}")
        return k

    def binary(head, body: bytes, with_labels: bool):
        """(labels or None, float32 rows) of an octet-stream body (``head``: its headers)."""
        shape = head.get("x-deg-shape", "")
        try:
            m, dim = (int(v) for v in shape.split(","))
        except ValueError:
            raise HTTPError(422, f"X-Deg-Shape must be 'rows,dim', got {shape!r}") from None
        if m < 0 or dim != index.dim:
            raise HTTPError(422, f"X-Deg-Shape {m},{dim}: the index's dim is {index.dim}")
        rows(m, "rows")
        want = m * (8 if with_labels else 0) + 4 * m * dim
        if len(body) != want:
            raise HTTPError(422, f"body of {len(body)} bytes; shape {m},{dim} needs {want}")
        labels = None
        if with_labels:
            labels = np.frombuffer(body, dtype="<i8", count=m).astype(np.int64)
            body = body[8 * m :]
        return labels, np.frombuffer(body, dtype="<f4").reshape(m, dim)

    def answer(head, labels, dists):
        if OCTET in head.get("accept", ""):
            payload = labels.astype("<i8").tobytes() + dists.astype("<f4").tobytes()
            shape = f"{labels.shape[0]},{labels.shape[1]}"
            return Response(payload, media_type=OCTET, headers={"X-Deg-Shape": shape})
        # padding (k beyond the index) is label -1 at distance inf, written null
        d = [[x if math.isfinite(x) else None for x in row] for row in dists.tolist()]
        return Response(
            json.dumps({"labels": labels.tolist(), "distances": d}),
            media_type="application/json",
        )

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, e: HTTPError):
        return JSONResponse({"detail": e.detail}, status_code=e.status)

    def mapped(e: Exception) -> HTTPError:
        if isinstance(e, HTTPError):
            return e
        if isinstance(e, LabelConflict):
            return HTTPError(409, str(e))
        if isinstance(e, KeyError):
            return HTTPError(404, str(e.args[0]) if e.args else "unknown label")
        if isinstance(e, (ValueError, TypeError)):
            return HTTPError(422, str(e))
        if isinstance(e, RuntimeError) and durable.failed is not None:
            return HTTPError(503, str(e))
        raise e

    async def run(fn, *args, **kwargs):
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except Exception as e:
            raise mapped(e) from e

    async def read(work, body: bytes, recall):
        """A search or exploration: small ones on the event loop (``INLINE_BYTES``), but not
        one for a recall target, whose first use makes the index's calibration (seconds)."""
        if len(body) > INLINE_BYTES or recall is not None or b'"recall"' in body:
            return await run(work)
        try:
            return work()
        except Exception as e:
            raise mapped(e) from e

    def parsed(model, body: bytes):
        try:
            return model.model_validate_json(body)
        except ValueError as e:  # pydantic's ValidationError, bad JSON among them
            raise HTTPError(422, _validation_text(e)) from None

    @app.post("/search", openapi_extra=models.body(models.SearchBody), response_model=models.Answer)
    async def search(
        request: Request, k: int = 10, eps: float | None = None, recall: float | None = None
    ):
        """k nearest neighbours of each query vector. JSON body, or float32 rows with the
        shape in ``X-Deg-Shape`` (then ``k``, ``eps`` and ``recall`` are query parameters).
        ``recall``: a target instead of ``eps`` (``Index.search(recall=)``)."""
        authorized(request)
        body, head = await body_of(request), request.headers

        def work():  # parsing and encoding too off the event loop when large (``read``)
            if head.get("content-type", "").startswith(OCTET):
                q, kk, ee, rr, filt, excl = binary(head, body, False)[1], k, eps, recall, None, None
            else:
                b = parsed(models.SearchBody, body)
                q, kk, ee, rr, filt, excl = b.vectors, b.k, b.eps, b.recall, b.filter, b.exclude
                if q and not isinstance(q[0], list):
                    q = [q]
                rows(len(q), "query vectors")
                q = _float_rows(q, index.dim)
            found = index.search(
                q, k=k_of(kk), eps=ee, recall=rr, threads=1, filter=filt, exclude=excl
            )
            return answer(head, *found)

        return await read(work, body, recall)

    @app.post(
        "/explore", openapi_extra=models.body(models.ExploreBody), response_model=models.Answer
    )
    async def explore(request: Request):
        """Neighbourhoods of stored vectors, by label (indexed queries)."""
        authorized(request)
        body, head = await body_of(request), request.headers

        def work():
            b = parsed(models.ExploreBody, body)
            rows(len(b.labels), "labels")
            entries = np.asarray(b.labels, dtype=np.int64)
            found = index.explore(
                entries,
                k=k_of(b.k),
                eps=b.eps,
                recall=b.recall,
                include_entry=b.include_entry,
                threads=1,
            )
            return answer(head, *found)

        return await read(work, body, None)

    @app.put("/vectors", openapi_extra=models.body(models.AddBody), response_model=models.Added)
    async def put_vectors(request: Request, upsert: bool = False):
        """Add vectors under new labels (409 for a label already present), or with
        ``upsert`` replace the vectors of labels already present. Acknowledged once the
        write-ahead log is on disk."""
        authorized(request)
        body, head = await body_of(request), request.headers

        def work():
            replace = upsert
            if head.get("content-type", "").startswith(OCTET):
                labels, x = binary(head, body, True)
            else:
                b = parsed(models.AddBody, body)
                rows(len(b.vectors), "vectors")
                labels, x, replace = b.labels, _float_rows(b.vectors, index.dim), b.upsert or upsert
                if labels is not None and len(labels) != len(b.vectors):
                    raise HTTPError(422, f"{len(labels)} labels for {len(b.vectors)} vectors")
            out = durable.add(labels, x, replace=replace)
            return {
                "labels": out["labels"].tolist(),
                "replaced": out["replaced"],
                "seq": out["seq"],
            }

        return await run(work)

    @app.delete(
        "/vectors", openapi_extra=models.body(models.LabelsBody), response_model=models.Removed
    )
    async def delete_vectors(request: Request):
        """Remove vectors by label (404 naming an unknown one; nothing is removed then)."""
        authorized(request)
        body = await body_of(request)

        def work():
            b = parsed(models.LabelsBody, body)
            rows(len(b.labels), "labels")
            return durable.remove(b.labels)

        return await run(work)

    @app.get("/vectors/{label}", response_model=models.Vector)
    async def get_vector(request: Request, label: int):
        """The stored vector of a label (normalised for cosine)."""
        authorized(request)
        v = await run(index.get_vectors, [label])
        return {"label": label, "vector": v[0].astype(np.float32).tolist()}

    @app.get("/stats")
    async def stats(request: Request, check_graph: bool = False):
        """Size, parameters, memory, log and snapshot state; with ``check_graph=true`` also
        the graph checks (they read the whole graph, and writes wait meanwhile)."""
        authorized(request)
        return await run(_stats, durable, check_graph)

    @app.get("/health")
    async def health():
        """Liveness: no token needed."""
        return {"status": "ok" if durable.failed is None else "writes refused"}

    @app.post("/snapshot")
    async def snapshot(request: Request):
        """Save the index now and truncate the log (writes wait; searches do not)."""
        authorized(request)
        return await run(durable.snapshot)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(request: Request):
        """Prometheus text: request counts and latency histograms per route, index size."""
        authorized(request)
        return PlainTextResponse(metrics.text(durable), media_type="text/plain; version=0.0.4")

    return Measured(app, metrics)


def _float_rows(q: list, dim: int) -> np.ndarray:
    """JSON rows as float32; values float32 cannot hold are refused here, not rounded to
    infinity."""
    try:
        x = np.asarray(q, dtype=np.float64)
    except (ValueError, TypeError):
        raise HTTPError(422, "vectors must be a list of equal-length lists of numbers") from None
    if x.ndim != 2 or (x.shape[0] and x.shape[1] != dim):
        raise HTTPError(422, f"vectors must be rows of {dim} numbers, got shape {x.shape}")
    bad = ~(np.abs(x) <= FLOAT32_MAX)  # NaN too
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise HTTPError(
            422, f"vectors must be finite float32 values: row {row}, column {col} is {x[row, col]}"
        )
    return x.astype(np.float32).reshape(-1, dim)


def _validation_text(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if errors is None:
        return str(e)
    parts = []
    for err in errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _stats(durable: Durable, check_graph: bool) -> dict:
    from deg import analysis

    index = durable.index
    out: dict[str, Any] = {
        "size": len(index),
        "dim": index.dim,
        "metric": index.metric,
        "edges_per_vertex": index.edges_per_vertex,
        "dtype": index.dtype,
        "quantize": index.quantize,
        "memory_bytes": index.nbytes,
        **durable.stats(),
    }
    if check_graph:
        start = time.perf_counter()
        with durable._write:  # writes wait, so no writer holds searches back meanwhile
            report = analysis.check(index, gq_sample=0)
        keys = ("ok", "regular", "undirected", "weights_exact", "connected", "view_current")
        out["graph"] = {key: report[key] for key in keys if key in report}
        out["graph"]["seconds"] = round(time.perf_counter() - start, 3)
    return out


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dynamic-exploration-graph")
    except metadata.PackageNotFoundError:
        return "unknown"


def serve(
    directory,
    params: dict | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    limits: Limits | None = None,
    sync: str = "group",
    snapshot_bytes: int = 256 << 20,
    write_nice: int | str = IDLE,
) -> None:
    """Open (or create) the durable index in ``directory`` and serve it until interrupted;
    a clean stop takes a last snapshot."""
    import uvicorn

    token = token or os.environ.get("DEG_TOKEN") or None
    durable = Durable(directory, params, sync=sync, snapshot_bytes=snapshot_bytes, nice=write_nice)
    print(
        f"deg serve: http://{host}:{port} ({durable.directory}, {len(durable.index)} vectors, "
        f"{durable.replayed} log records replayed)",
        file=sys.stderr,
        flush=True,
    )
    try:
        app = create_app(durable, token, limits)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        durable.close()

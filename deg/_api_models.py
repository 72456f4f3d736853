"""The request and response bodies of the retrieval service (``deg.server``), as pydantic
models: they check JSON bodies and document the routes at ``/docs``."""

from __future__ import annotations

from pydantic import BaseModel, Field

RECALL = (
    "a recall@k target instead of eps: the index picks the cheapest setting that reaches it "
    "(the first request for a k calibrates, seconds on a large index; see Index.calibrate)"
)


class SearchBody(BaseModel):
    vectors: list[list[float]] | list[float] = Field(
        description="query vectors (rows of the index's dim), or one vector"
    )
    k: int = Field(10, description="neighbours per query")
    eps: float | None = Field(
        None, ge=0, description="search slack (default 0.1): larger is slower and more exact"
    )
    recall: float | None = Field(None, description=RECALL)
    filter: list[int] | None = Field(None, description="only these labels may be returned")
    exclude: list[int] | None = Field(None, description="these labels are never returned")


class ExploreBody(BaseModel):
    labels: list[int] = Field(description="labels of stored vectors to start from")
    k: int = 10
    eps: float | None = Field(None, ge=0, description="search slack (default 0)")
    recall: float | None = Field(None, description=RECALL)
    include_entry: bool = False


class AddBody(BaseModel):
    labels: list[int] | None = Field(
        None, description="non-negative, distinct (default: after the largest label so far)"
    )
    vectors: list[list[float]]
    upsert: bool = Field(False, description="replace the vectors of labels already present")


class LabelsBody(BaseModel):
    labels: list[int]


class Answer(BaseModel):
    labels: list[list[int]] = Field(description="label -1 pads a row the index cannot fill")
    distances: list[list[float | None]] = Field(description="ascending; null pads")


class Added(BaseModel):
    labels: list[int]
    replaced: int = Field(description="labels that were present and got a new vector")
    seq: int = Field(description="the write's sequence number in the log")


class Removed(BaseModel):
    removed: int
    seq: int


class Vector(BaseModel):
    label: int
    vector: list[float]


def body(model: type[BaseModel]) -> dict:
    """``openapi_extra`` documenting a route's JSON body (the routes read raw bodies, which
    may also be float32 bytes)."""
    return {
        "requestBody": {
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    }

"""What OpenAPI says a route answers besides its JSON model: downloads, redirects, work accepted for
later. Errors are documented by `errors.responses`; together they are every status a route answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]

LOCATION = {"Location": {"description": "where to go", "schema": {"type": "string"}}}


def binary(description: str, *, partial: bool = True) -> Responses:
    """200 (and 206 for a Range) with the content's bytes, of whatever media type it is."""
    body = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    documented: Responses = {200: {"description": description, "content": body}}
    if partial:
        documented[206] = {"description": "The part a Range header asked for", "content": body}
    return documented


def redirect(status: int, description: str) -> Responses:
    """A redirect, with its Location."""
    return {status: {"description": description, "headers": LOCATION}}


class Accepted(BaseModel):
    """Being made: ask again after `Retry-After` seconds."""

    run_id: str = Field(description="the run that makes it")
    status: str


def accepted(description: str) -> Responses:
    """202 while the thing asked for is still being made."""
    return {202: {"model": Accepted, "description": description}}


def multipart_body(fields: dict[str, Any], required: list[str], *, text: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: a multipart form with `fields` (and,
    with `text`, the same as a plain text body)."""
    content: dict[str, Any] = {
        "multipart/form-data": {"schema": {"type": "object", "properties": fields, "required": required}}
    }
    if text:
        content["text/plain"] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}}


def form_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads an urlencoded (or multipart) form itself."""
    schema = {"type": "object", "properties": fields, "required": required, "additionalProperties": {"type": "string"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
            },
        }
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that parses its JSON body itself (after checking a signature over it)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}

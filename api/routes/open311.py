"""/open311/v2: Open311 GeoReport v2 (JSON and XML) over the district's pack (engine/integrations/open311.py).

Answers and errors are the specification's own (not problem details): arrays of requests,
services or ``{code, description}`` errors, as ``application/json`` or ``text/xml`` by the
suffix of the path. ``jurisdiction_id`` is the district code.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from govflow.engine.integrations.open311 import Open311Error
from govflow.engine.model.errors import GovflowError

from ..deps import AppDep

router = APIRouter(prefix="/open311/v2", tags=["open311"])

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
#: what XML 1.0 cannot carry (control characters other than tab, newline, carriage return)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: the element name of a list's items, by the list's name
_ITEM = {"attributes": "attribute", "values": "value"}
_ERROR_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_SPEC_ERROR = {"content": {"application/json": {"schema": _ERROR_SCHEMA}, "text/xml": {"schema": {"type": "string"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request (Open311 errors: [{code, description}])", **_SPEC_ERROR},
    403: {"description": "Missing or invalid api_key (Open311 errors)", **_SPEC_ERROR},
    404: {"description": "Unknown jurisdiction, service, request, token or format (Open311 errors)", **_SPEC_ERROR},
}
_TEXT = {"type": ["string", "null"]}
#: the JSON answers, as the specification's response tables name their fields (the XML has the same elements)
_SERVICE = {
    "type": "object",
    "required": ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"],
    "properties": {
        "service_code": {"type": "string"},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"enum": ["realtime", "batch", "blackbox"]},
        "keywords": {"type": "string"},
        "group": {"type": "string"},
    },
}
_ATTRIBUTE = {
    "type": "object",
    "required": ["variable", "code", "datatype", "required", "datatype_description", "order", "description"],
    "properties": {
        "variable": {"type": "boolean"},
        "code": {"type": "string"},
        "datatype": {"enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]},
        "required": {"type": "boolean"},
        "datatype_description": _TEXT,
        "order": {"type": "integer"},
        "description": {"type": "string"},
        "values": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "name"],
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}},
            },
        },
    },
}
_DEFINITION = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {"service_code": {"type": "string"}, "attributes": {"type": "array", "items": _ATTRIBUTE}},
}
_CREATED = {
    "type": "array",
    "items": {
        "type": "object",
        "anyOf": [{"required": ["service_request_id"]}, {"required": ["token"]}],
        "properties": {
            "service_request_id": {"type": "string"},
            "token": {"type": "string"},
            "service_notice": _TEXT,
            "account_id": _TEXT,
        },
    },
}
_REQUEST = {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime", "updated_datetime"],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"enum": ["open", "closed"]},
        "status_notes": _TEXT,
        "service_name": _TEXT,
        "service_code": _TEXT,
        "description": _TEXT,
        "agency_responsible": _TEXT,
        "service_notice": _TEXT,
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": {"type": "string", "format": "date-time"},
        "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
        "address": _TEXT,
        "address_id": _TEXT,
        "zipcode": _TEXT,
        "lat": {"type": ["number", "null"]},
        "long": {"type": ["number", "null"]},
        "media_url": _TEXT,
    },
}
_TOKEN = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}, "service_request_id": {"type": "string"}},
    },
}


def _responses(schema: dict[str, Any], status: int = 200) -> dict[int | str, dict[str, Any]]:
    ok = {"description": "The answer, as JSON or as XML by the suffix of the path"}
    return {
        status: {**ok, "content": {"application/json": {"schema": schema}, "text/xml": {"schema": {"type": "string"}}}},
        **_ERRORS,
    }


def _query(*names: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """The query parameters an operation reads (documented only: the route reads them itself and
    answers a bad value with the spec's 400, never with a validation problem)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": about,
                "schema": {"type": "string", **extra},
            }
            for name, about, extra in names
        ]
    }


_JURISDICTION = (
    "jurisdiction_id",
    "the district code; may be left out while one district is served",
    {"maxLength": 64, "examples": ["gulou"]},
)
#: the fields of POST requests (application/x-www-form-urlencoded, as the specification says)
_POST_FORM = {
    "type": "object",
    "required": ["service_code", "api_key"],
    "properties": {
        "jurisdiction_id": {"type": "string", "maxLength": 64, "examples": ["gulou"]},
        "service_code": {
            "type": "string",
            "maxLength": 64,
            "description": "a matter code of the catalog",
            "examples": ["road.manhole_cover", "road.pothole"],
        },
        "api_key": {"type": "string", "maxLength": 256, "description": "the integrator principal's token"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90, "examples": [26.0865]},
        "long": {"type": "number", "minimum": -180, "maximum": 180, "examples": [119.3025]},
        "address_string": {"type": "string", "maxLength": 256},
        "address_id": {"type": "string", "maxLength": 128},
        "email": {"type": "string", "maxLength": 254, "description": "personal data: never in a GET answer"},
        "device_id": {"type": "string", "maxLength": 128},
        "account_id": {"type": "string", "maxLength": 128},
        "first_name": {"type": "string", "maxLength": 32, "description": "personal data: the reporter's name"},
        "last_name": {"type": "string", "maxLength": 32, "description": "personal data: the reporter's name"},
        "phone": {"type": "string", "maxLength": 32, "description": "personal data: the reporter's phone"},
        "description": {"type": "string", "maxLength": 4000},
        "media_url": {"type": "string", "maxLength": 2048},
    },
    "patternProperties": {r"^attribute\[[^\[\]]{1,64}\](\[\])?$": {"type": "string", "maxLength": 4000}},
}
_POST_EXAMPLE = {
    "jurisdiction_id": "gulou",
    "service_code": "road.manhole_cover",
    "api_key": "the-integrator-token",
    "lat": 26.0865,
    "long": 119.3025,
    "attribute[cover]": "missing",
    "description": "东街口有个井盖没了",
}
_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": _POST_FORM, "example": _POST_EXAMPLE}},
    }
}
Fmt = Annotated[str, Path(description="json or xml", json_schema_extra={"enum": ["json", "xml"]})]


def _element(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_element(_ITEM.get(name, "item"), item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))
    return element


def to_xml(root: str, item: str | None, payload: Any) -> bytes:
    """The spec's XML: ``<root><item>…</item>…</root>`` (or one object as ``<root>…</root>``)."""
    if item is None:
        element = _element(root, payload)
    else:
        element = ET.Element(root)
        for row in payload:
            element.append(_element(item, row))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def _render(fmt: str, payload: Any, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, payload), status_code=status, media_type=XML_TYPE)
    import json

    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type=JSON_TYPE)


def _error(fmt: str, exc: Open311Error) -> Response:
    return _render(fmt if fmt == "json" else "xml", exc.errors, "errors", "error", exc.status)


def _has_nul(request: Request, *parts: str) -> bool:
    """A NUL character anywhere in the path or query: no database stores it, no client means it."""
    return any("\x00" in p for p in parts) or any(
        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()
    )


def _answer(
    fmt: str, root: str, item: str | None, produce: Callable[[], Any], request: Request, *parts: str
) -> Response:
    if fmt not in ("json", "xml"):
        return _error("xml", Open311Error(404, f"format {fmt[:16]!r} is not served: use .json or .xml"))
    if _has_nul(request, *parts):
        return _error(fmt, Open311Error(400, "the request contains a NUL character"))
    try:
        return _render(fmt, produce(), root, item)
    except Open311Error as exc:
        return _error(fmt, exc)
    except GovflowError as exc:
        return _error(fmt, Open311Error(400, exc.message))


@router.get(
    "/services.{fmt}",
    responses=_responses({"type": "array", "items": _SERVICE}),
    response_class=Response,
    openapi_extra=_query(_JURISDICTION),
)
def services(fmt: Fmt, request: Request, app: AppDep) -> Response:
    """GET Service List: the district's matters."""
    jurisdiction = request.query_params.get("jurisdiction_id")
    return _answer(fmt, "services", "service", lambda: app.integrations.open311.services(jurisdiction), request)


@router.get(
    "/services/{service_code}.{fmt}",
    responses=_responses(_DEFINITION),
    response_class=Response,
    openapi_extra=_query(_JURISDICTION),
)
def service_definition(
    service_code: Annotated[str, Path(examples=["road.manhole_cover"])], fmt: Fmt, request: Request, app: AppDep
) -> Response:
    """GET Service Definition: the matter's report form as attributes."""
    jurisdiction = request.query_params.get("jurisdiction_id")
    return _answer(
        fmt,
        "service_definition",
        None,
        lambda: app.integrations.open311.definition(jurisdiction, service_code),
        request,
        service_code,
    )


@router.post(
    "/requests.{fmt}",
    responses=_responses(_CREATED, 201),
    response_class=Response,
    status_code=201,
    openapi_extra=_POST_BODY,
)
async def create_request(fmt: Fmt, request: Request, app: AppDep) -> Response:
    """POST Service Request (form-encoded; api_key names the integrator principal)."""
    if fmt not in ("json", "xml"):
        return _error("xml", Open311Error(404, f"format {fmt[:16]!r} is not served: use .json or .xml"))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _error(fmt, Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded)"))
    try:
        form = await request.form(max_files=0, max_fields=200)
    except Exception as exc:  # a body the form parser refuses (too many fields, a file, bad multipart)
        return _error(fmt, Open311Error(400, f"the form could not be read: {str(exc)[:200]}"))
    if _has_nul(request):
        return _error(fmt, Open311Error(400, "the request contains a NUL character"))
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    given = {k for k, _ in items}
    items += [
        (k, v) for k, v in request.query_params.multi_items() if k in ("api_key", "jurisdiction_id") and k not in given
    ]
    try:
        answer = await run_in_threadpool(app.integrations.open311.submit, items)
    except Open311Error as exc:
        return _error(fmt, exc)
    return _render(fmt, answer, "service_requests", "request", 201)


@router.get(
    "/requests.{fmt}",
    responses=_responses({"type": "array", "items": _REQUEST}),
    response_class=Response,
    openapi_extra=_query(
        _JURISDICTION,
        ("service_request_id", "comma-separated ids; when given, the other filters are ignored", {}),
        ("service_code", "comma-separated service codes", {}),
        ("start_date", "w3 date and time with a zone (default: 90 days before end_date)", {}),
        ("end_date", "w3 date and time with a zone (default: now); at most 90 days after start_date", {}),
        ("status", "open, closed, or both comma-separated", {"examples": ["open"]}),
        ("page_size", "at most this many requests (1 to 1000; default 1000)", {}),
    ),
)
def list_requests(fmt: Fmt, request: Request, app: AppDep) -> Response:
    """GET Service Requests, with the spec's filters, defaults (90 days) and limit (1,000)."""
    params = dict(request.query_params)
    jurisdiction = params.get("jurisdiction_id")
    return _answer(
        fmt, "service_requests", "request", lambda: app.integrations.open311.requests(jurisdiction, params), request
    )


@router.get(
    "/requests/{request_id}.{fmt}",
    responses=_responses({"type": "array", "items": _REQUEST}),
    response_class=Response,
    openapi_extra=_query(_JURISDICTION),
)
def get_request(request_id: str, fmt: Fmt, request: Request, app: AppDep) -> Response:
    """GET Service Request: one request, as an array of one."""
    jurisdiction = request.query_params.get("jurisdiction_id")
    return _answer(
        fmt,
        "service_requests",
        "request",
        lambda: app.integrations.open311.request(jurisdiction, request_id),
        request,
        request_id,
    )


@router.get(
    "/tokens/{token}.{fmt}",
    responses=_responses(_TOKEN),
    response_class=Response,
    openapi_extra=_query(_JURISDICTION),
)
def get_token(token: str, fmt: Fmt, request: Request, app: AppDep) -> Response:
    """GET service_request_id from a token (the id once the case has been dispatched)."""
    jurisdiction = request.query_params.get("jurisdiction_id")
    return _answer(
        fmt, "service_requests", "request", lambda: app.integrations.open311.token(jurisdiction, token), request, token
    )

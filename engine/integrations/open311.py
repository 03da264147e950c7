"""Open311 GeoReport v2 over a district's pack: services from the catalog, definitions from the forms,
requests filed as cases, their status mapped from govflow's lifecycle.

One **jurisdiction** per district (``jurisdiction_id`` = the district code). It may be left out
while only one district is active; with several it is required (400), and an unknown one is 404.

* ``services``: every matter of the catalog: ``service_code`` = the matter code, its name, the
  group (the code's first segment), its keywords; ``metadata`` is true when the matter has a
  *report form* with fields: the pack form named ``report.<matter code>``, else
  ``report.<group>``. ``type`` is ``realtime``.
* ``services/{code}``: the report form's fields as attributes (text → ``string``/``text``,
  integer → ``number``, datetime → ``datetime``, boolean/choice/unit/matter →
  ``singlevaluelist`` with their values).
* ``POST requests``: form-encoded as the spec says. ``api_key`` is a govflow bearer token and the
  principal it names reports the case — Casbin decides, as for every report (the reference
  policy lets ``integrator`` report). ``lat``/``long`` (both, in range) or ``address_string`` or
  ``address_id``; ``attribute[code]`` and ``attribute[code][]`` are checked against the report
  form; ``first_name``/``last_name`` become the reporter's name and ``phone`` the reporter's
  phone (personal data, masked as always), ``email``/``account_id``/``device_id`` are kept with
  ``media_url`` in ``open311_requests``. A case the rules could route answers with its
  ``service_request_id``; one that went to the command centre (no usable location) answers with a
  ``token`` that ``GET tokens/{token}`` turns into the id once the case has been dispatched.
* ``GET requests``: ``service_request_id`` (comma-separated; overrides the rest),
  ``service_code`` and ``status`` (comma-separated), ``start_date``/``end_date`` (w3 dates with a
  zone; at most 90 days apart; by default the last 90 days); at most 1,000 requests, newest first
  (``page_size`` may ask for fewer). ``GET requests/{id}`` and ``GET tokens/{token}`` answer an
  array of one.
* Status: ``closed`` from ``reviewed`` on (the result was checked on the ground), and for an
  evaluated or withdrawn case; ``open`` before. ``status_notes`` names the stage (中文 and
  English), ``agency_responsible`` the owner unit, ``expected_datetime`` the current deadline
  (the earliest due time of an open task), ``service_notice`` the matter's tier. Every
  ``*_datetime`` is RFC 3339 in UTC with ``Z``, as everywhere in govflow (input accepts any offset).
* **No personal data in GET answers**: no name, phone, e-mail, account or device; the stored
  name, phone and e-mail of the reporter — and anything shaped like a phone number or an e-mail
  address — are masked inside the description and the address too.
* Errors are the spec's: an array of ``{code, description}``, 400 for a bad request, 403 for a
  missing or invalid ``api_key`` (or Casbin's refusal), 404 for an unknown service code,
  jurisdiction, request or token.

The Open311 row is written in the transaction that creates the case: :class:`Open311Projector` is
a unit-of-work projector that picks up the request being filed by this thread (a context variable
set around the report), so a case never exists without what its request brought.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import math
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from govflow.engine.cases.service import NewCase
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import (
    FormValidationError,
    GovflowError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from govflow.engine.model.lifecycle import CHINESE
from govflow.engine.model.limits import DESCRIPTION_MAX, LAT_MAX, LAT_MIN, LNG_MAX, LNG_MIN
from govflow.engine.store.db import CaseRow, CaseTask, Open311Request

#: the spec's limits on GET requests
MAX_REQUESTS = 1000
MAX_SPAN = dt.timedelta(days=90)
#: our limits on what a POST may carry
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE = 4000
MAX_ATTRIBUTES_TOTAL = 16_000
MAX_VALUES_PER_ATTRIBUTE = 50
FIELD_MAX = {"address_string": 256, "address_id": 128, "email": 254, "first_name": 32, "last_name": 32,
             "phone": 32, "device_id": 128, "account_id": 128, "media_url": 2048, "service_code": 64,
             "jurisdiction_id": 64, "api_key": 256}  # fmt: skip
CLOSED_STAGES = frozenset({"reviewed", "evaluated", "withdrawn"})
TIER_NOTICE = {
    "simple": "简单问题马上办: handled at once (signed for within minutes, handled within a working day)",
    "complex": "复杂问题快速办: handled quickly, with the departments concerned",
    "difficult": "疑难问题限时办: handled within a set time limit",
}
STAGE_ENGLISH = {
    "reported": "reported",
    "dispatched": "dispatched to the street",
    "signed": "signed for",
    "handling": "being handled",
    "called": "departments called out",
    "consulting": "joint consultation",
    "completed": "result submitted",
    "reviewed": "result checked on the ground",
    "evaluated": "evaluated by the reporter",
    "withdrawn": "withdrawn by the reporter",
}
_PHONE = re.compile(r"\+?\d[\d\- ]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE_FIELD = re.compile(r"^[0-9+\- ]{3,32}$")
_EMAIL_FIELD = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")

_filing: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("govflow_open311_filing", default=None)


class Open311Error(Exception):
    """An error in the spec's format: HTTP ``status`` and ``[{code, description}, ...]``."""

    def __init__(self, status: int, description: str, *more: str) -> None:
        super().__init__(description)
        self.status = status
        self.errors = [{"code": status, "description": d} for d in (description, *more)]


class Open311Projector:
    """Writes the Open311 row of a case being filed, in the transaction that creates the case."""

    def __call__(self, conn: Connection, changes: Sequence[Any]) -> None:
        pending = _filing.get()
        if pending is None:
            return
        for change in changes:
            if change.read_version is None and "case_id" not in pending:
                pending["case_id"] = change.case_id
                conn.execute(insert(Open311Request), {**pending["row"], "case_id": change.case_id})


@contextlib.contextmanager
def _filing_request(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"row": row}
    token = _filing.set(state)
    try:
        yield state
    finally:
        _filing.reset(token)


def w3(value: dt.datetime | None) -> str | None:
    """An instant as govflow writes every instant: RFC 3339 in UTC with ``Z`` (a W3C date-time too)."""
    return None if value is None else iso(value)


def parse_w3(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Open311Error(400, f"{name} must be a w3 date and time with a zone, e.g. 2026-09-28T09:00:00+08:00")
    return parsed.astimezone(dt.UTC)


def report_form(pack: Any, code: str) -> Any | None:
    """The report form of a matter: ``report.<code>``, else ``report.<group>`` (None: no form)."""
    return pack.forms.get(f"report.{code}") or pack.forms.get(f"report.{code.split('.', 1)[0]}")


def mask_personal(text: str | None, secrets_: Sequence[str | None]) -> str | None:
    if not text:
        return text
    for secret in sorted({s for s in secrets_ if s and len(s) >= 2}, key=len, reverse=True):
        text = text.replace(secret, "*" * len(secret))
    text = _EMAIL.sub(lambda m: "*" * len(m.group()), text)
    return _PHONE.sub(lambda m: m.group()[:3] + "*" * max(0, len(m.group()) - 3), text)


class Open311:
    """The Open311 GeoReport v2 service of an application (see module doc)."""

    def __init__(self, db: Engine, packs: Any, access: Any, cases: Any, clock: Any) -> None:
        self.db, self.packs, self.access, self.cases, self.clock = db, packs, access, cases, clock
        uow = cases.uow
        if not any(isinstance(p, Open311Projector) for p in uow.projectors):
            uow.projectors.append(Open311Projector())

    # -- jurisdictions ---------------------------------------------------------------------
    def pack(self, jurisdiction_id: str | None) -> Any:
        """The active pack of the jurisdiction (cached by the registry; no query on the hot path)."""
        try:
            return self.packs.active(jurisdiction_id or None)
        except NotFound:
            if jurisdiction_id:
                raise Open311Error(404, f"jurisdiction_id {jurisdiction_id[:64]!r} was not found") from None
            raise Open311Error(400, "jurisdiction_id was not provided") from None
        except InvalidInput:  # several districts are served: the spec's "required" case
            districts = ", ".join(self.packs.districts())
            raise Open311Error(400, f"jurisdiction_id was not provided (one of: {districts})") from None

    # -- services ------------------------------------------------------------------------------
    def services(self, jurisdiction_id: str | None) -> list[dict[str, Any]]:
        pack = self.pack(jurisdiction_id)
        out = []
        for matter in pack.catalog.matters.values():
            form = report_form(pack, matter.code)
            out.append(
                {
                    "service_code": matter.code,
                    "service_name": matter.name,
                    "description": f"{matter.name} ({TIER_NOTICE.get(matter.tier, matter.tier).split(':')[0]})",
                    "metadata": bool(form and form.fields),
                    "type": "realtime",
                    "keywords": ", ".join(matter.keywords),
                    "group": matter.code.split(".", 1)[0],
                }
            )
        return out

    def _matter(self, pack: Any, code: str | None) -> Any:
        if not code:
            raise Open311Error(400, "service_code was not provided")
        matter = pack.catalog.matters.get(code)
        if matter is None:
            raise Open311Error(404, f"service_code {code[:64]!r} was not found")
        return matter

    def definition(self, jurisdiction_id: str | None, code: str) -> dict[str, Any]:
        pack = self.pack(jurisdiction_id)
        matter = self._matter(pack, code)
        form = report_form(pack, matter.code)
        return {"service_code": matter.code, "attributes": self._attributes(pack, form) if form else []}

    @staticmethod
    def _attributes(pack: Any, form: Any) -> list[dict[str, Any]]:
        catalog = pack.catalog
        attributes = []
        for order, (code, field) in enumerate(form.fields.items(), start=1):
            values: list[dict[str, Any]] = []
            if field.type == "text":
                datatype = "text" if field.max_length > 255 else "string"
                about = f"at most {field.max_length} characters"
            elif field.type == "integer":
                datatype, about = "number", f"a whole number from {field.min} to {field.max}"
            elif field.type == "datetime":
                datatype, about = "datetime", "ISO 8601 with a zone"
            elif field.type == "boolean":
                datatype, about = "singlevaluelist", "yes or no"
                values = [{"key": "true", "name": "是 yes"}, {"key": "false", "name": "否 no"}]
            elif field.type == "choice":
                datatype, about = "singlevaluelist", "one of the values"
                values = [{"key": o, "name": o} for o in field.options]
            elif field.type == "unit":
                datatype, about = "singlevaluelist", f"a {field.kind or 'unit'} of the district"
                values = [
                    {"key": u.code, "name": u.name}
                    for u in catalog.units.values()
                    if field.kind is None or u.kind == field.kind
                ]
            elif field.type == "matter":
                datatype, about = "singlevaluelist", "a matter of the catalog"
                values = [{"key": m.code, "name": m.name} for m in catalog.matters.values()]
            else:  # assignments: not something a resident reports
                continue
            attributes.append(
                {
                    "variable": True,
                    "code": code,
                    "datatype": datatype,
                    "required": field.required,
                    "datatype_description": about,
                    "order": order,
                    "description": code.replace("_", " "),
                    "values": values,
                }
            )
        return attributes

    # -- filing a request ----------------------------------------------------------------------------
    def submit(self, form: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """File a service request from the form's (name, value) pairs; the spec's answer."""
        fields: dict[str, str] = {}
        attributes: dict[str, Any] = {}
        for name, value in form:
            if len(value) > MAX_ATTRIBUTE_VALUE:
                raise Open311Error(400, f"{name[:64]} is too long (at most {MAX_ATTRIBUTE_VALUE} characters)")
            if "\x00" in value or "\x00" in name:
                raise Open311Error(400, f"{name[:64]} contains a NUL character")
            if name.startswith("attribute["):
                match = re.fullmatch(r"attribute\[([^\[\]]{1,64})\](\[\])?", name)
                if match is None:
                    raise Open311Error(400, f"{name[:80]!r} is not attribute[code] or attribute[code][]")
                code, many = match.group(1), match.group(2) is not None
                if many:
                    attributes.setdefault(code, [])
                    if not isinstance(attributes[code], list):
                        raise Open311Error(400, f"attribute {code!r} given both as one value and as a list")
                    attributes[code].append(value)
                elif code in attributes:
                    raise Open311Error(400, f"attribute {code!r} given more than once")
                else:
                    attributes[code] = value
            elif name in fields:
                raise Open311Error(400, f"{name[:64]} given more than once")
            else:
                fields[name] = value
        if len(attributes) > MAX_ATTRIBUTES or any(
            isinstance(v, list) and len(v) > MAX_VALUES_PER_ATTRIBUTE for v in attributes.values()
        ):
            raise Open311Error(400, f"at most {MAX_ATTRIBUTES} attributes of at most {MAX_VALUES_PER_ATTRIBUTE} values")
        if (
            sum(len(c) + sum(len(x) for x in (v if isinstance(v, list) else [v])) for c, v in attributes.items())
            > MAX_ATTRIBUTES_TOTAL
        ):
            raise Open311Error(400, f"the attributes exceed {MAX_ATTRIBUTES_TOTAL} characters together")
        for name, limit in FIELD_MAX.items():
            if len(fields.get(name) or "") > limit:
                raise Open311Error(400, f"{name} is too long (at most {limit} characters)")
        fields = {k: v.strip() for k, v in fields.items() if v.strip()}  # empty means not given (the spec)
        api_key = fields.get("api_key")
        if not api_key:
            raise Open311Error(403, "api_key was not provided -- can't proceed with create_request")
        try:
            principal = self.access.authenticate(api_key)
        except Unauthenticated:
            raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request") from None
        pack = self.pack(fields.get("jurisdiction_id"))
        matter = self._matter(pack, fields.get("service_code"))
        lat, lng = self._location(fields)
        address = fields.get("address_string")
        if lat is None and not address and not fields.get("address_id"):
            raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
        description = fields.get("description") or matter.name
        if len(description) > DESCRIPTION_MAX:
            raise Open311Error(400, f"description is longer than {DESCRIPTION_MAX} characters")
        phone = fields.get("phone")
        if phone is not None and not _PHONE_FIELD.match(phone):
            raise Open311Error(400, "phone must be 3 to 32 digits, spaces, + or -")
        email = fields.get("email")
        if email is not None and not _EMAIL_FIELD.match(email):
            raise Open311Error(400, "email is not an e-mail address")
        media_url = fields.get("media_url")
        if media_url is not None and not re.match(r"^https?://[^\s]+$", media_url):
            raise Open311Error(400, "media_url must be an http or https URL")
        values = self._check_attributes(pack, matter.code, attributes)
        token = secrets.token_urlsafe(12)
        row = {
            "token": token,
            "jurisdiction": pack.catalog.district,
            "service_code": matter.code,
            "attributes": values,
            "media_url": media_url,
            "address_id": fields.get("address_id"),
            "email": email,
            "account_id": fields.get("account_id"),
            "device_id": fields.get("device_id"),
            "submitted_by": principal.id,
            "created_at": self.clock.now(),
        }
        new = NewCase(
            channel="app",
            description=description,
            category=matter.code,
            lat=lat,
            lng=lng,
            address=address,
            reporter_name=self._name(fields.get("first_name"), fields.get("last_name")),
            reporter_phone=phone,
            district=pack.catalog.district,
        )
        try:
            with _filing_request(row):
                outcome = self.cases.report(principal, new)
        except InvalidInput as exc:
            details = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in exc.errors]
            raise Open311Error(400, exc.message, *details) from None
        except GovflowError as exc:
            raise Open311Error(403 if isinstance(exc, PermissionDenied) else 400, exc.message) from None
        answer: dict[str, Any] = {
            "service_notice": TIER_NOTICE.get(matter.tier),
            "account_id": fields.get("account_id"),
        }
        if any(e["kind"] == "case.routed" for e in outcome.events):
            return [{"service_request_id": str(outcome.case_id), **answer}]
        return [{"token": token, **answer}]

    @staticmethod
    def _name(first: str | None, last: str | None) -> str | None:
        if not first and not last:
            return None
        if any("\u4e00" <= c <= "\u9fff" for c in (first or "") + (last or "")):
            return f"{last or ''}{first or ''}"  # 姓 then 名
        return " ".join(p for p in (first, last) if p)

    @staticmethod
    def _location(fields: Mapping[str, str]) -> tuple[float | None, float | None]:
        raw_lat, raw_lng = fields.get("lat"), fields.get("long")
        if raw_lat is None and raw_lng is None:
            return None, None
        if raw_lat is None or raw_lng is None:
            raise Open311Error(400, "lat and long must be given together")
        try:
            lat, lng = float(raw_lat), float(raw_lng)
        except ValueError:
            raise Open311Error(400, "lat and long must be decimal degrees (WGS84)") from None
        if not (math.isfinite(lat) and math.isfinite(lng) and LAT_MIN <= lat <= LAT_MAX and LNG_MIN <= lng <= LNG_MAX):
            raise Open311Error(400, "lat must be within -90..90 and long within -180..180")
        return lat, lng

    @staticmethod
    def _check_attributes(pack: Any, code: str, attributes: dict[str, Any]) -> dict[str, Any]:
        form = report_form(pack, code)
        if form is None or not form.fields:
            if attributes:
                raise Open311Error(
                    400, f"service {code} takes no attributes (got {', '.join(sorted(attributes))[:200]})"
                )
            return {}
        unknown = sorted(set(attributes) - set(form.fields))
        if unknown:
            raise Open311Error(400, f"unknown attribute(s) for {code}: {', '.join(unknown)[:200]}")
        data: dict[str, Any] = {}
        for name, value in attributes.items():
            field = form.fields[name]
            if isinstance(value, list):
                raise Open311Error(400, f"attribute {name} takes a single value")
            if field.type == "integer":
                try:
                    data[name] = int(value)
                except ValueError:
                    raise Open311Error(400, f"attribute {name} must be a whole number") from None
            elif field.type == "boolean":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise Open311Error(400, f"attribute {name} must be true or false")
                data[name] = value.lower() in ("true", "1")
            else:
                data[name] = value
        try:
            form.validate(data, pack.catalog)
        except FormValidationError as exc:
            details = [f"attribute {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors]
            raise Open311Error(400, f"the attributes do not match service {code}'s definition", *details) from None
        return data

    # -- reading requests ------------------------------------------------------------------------------
    def requests(self, jurisdiction_id: str | None, params: Mapping[str, str]) -> list[dict[str, Any]]:
        pack = self.pack(jurisdiction_id)
        district = pack.catalog.district
        query = select(CaseRow).where(CaseRow.district == district)
        ids = [p.strip() for p in (params.get("service_request_id") or "").split(",") if p.strip()]
        if ids:
            if len(ids) > MAX_REQUESTS:
                raise Open311Error(400, f"at most {MAX_REQUESTS} service_request_id values")
            wanted = []
            for text in ids:
                with contextlib.suppress(ValueError):
                    wanted.append(uuid.UUID(text))
            query = query.where(CaseRow.id.in_(wanted))
            limit = MAX_REQUESTS
        else:
            codes = [c.strip() for c in (params.get("service_code") or "").split(",") if c.strip()]
            if codes:
                query = query.where(CaseRow.matter.in_(codes))
            statuses = {s.strip() for s in (params.get("status") or "").split(",") if s.strip()}
            if statuses - {"open", "closed"}:
                raise Open311Error(400, "status must be open, closed or both (comma-separated)")
            if statuses == {"open"}:
                query = query.where(CaseRow.status.not_in(CLOSED_STAGES))
            elif statuses == {"closed"}:
                query = query.where(CaseRow.status.in_(CLOSED_STAGES))
            now = self.clock.now()
            start = parse_w3(params["start_date"], "start_date") if params.get("start_date") else None
            end = parse_w3(params["end_date"], "end_date") if params.get("end_date") else None
            if start and end and end - start > MAX_SPAN:
                raise Open311Error(400, "start_date and end_date may not span more than 90 days")
            if start and end and end < start:
                raise Open311Error(400, "end_date is before start_date")
            if start is None and end is None:
                end = now
            if start is None:
                assert end is not None
                start = end - MAX_SPAN
            if end is None:
                end = start + MAX_SPAN
            query = query.where(CaseRow.created_at >= start, CaseRow.created_at <= end)
            limit = MAX_REQUESTS
            if params.get("page_size"):
                try:
                    limit = int(params["page_size"])
                except ValueError:
                    limit = 0
                if not 1 <= limit <= MAX_REQUESTS:
                    raise Open311Error(400, f"page_size must be 1 to {MAX_REQUESTS}")
        query = query.order_by(CaseRow.created_at.desc()).limit(limit)
        return self._views(pack, query)

    def request(self, jurisdiction_id: str | None, request_id: str) -> list[dict[str, Any]]:
        pack = self.pack(jurisdiction_id)
        try:
            case_id = uuid.UUID(request_id)
        except ValueError:
            raise Open311Error(404, f"service_request_id {request_id[:64]!r} was not found") from None
        views = self._views(
            pack, select(CaseRow).where(CaseRow.id == case_id, CaseRow.district == pack.catalog.district)
        )
        if not views:
            raise Open311Error(404, f"service_request_id {request_id[:64]!r} was not found")
        return views

    def token(self, jurisdiction_id: str | None, token: str) -> list[dict[str, Any]]:
        pack = self.pack(jurisdiction_id)
        with self.db.connect() as conn:
            row = conn.execute(
                select(Open311Request.case_id, CaseRow.owner_unit, CaseRow.closed_at)
                .join(CaseRow, CaseRow.id == Open311Request.case_id)
                .where(Open311Request.token == token, Open311Request.jurisdiction == pack.catalog.district)
            ).first()
        if row is None:
            raise Open311Error(404, f"token {token[:64]!r} was not found")
        if row.owner_unit != pack.catalog.command_centre or row.closed_at is not None:
            return [{"service_request_id": str(row.case_id), "token": token}]
        return [{"token": token}]  # not yet dispatched: no id to give

    def _views(self, pack: Any, query: Any) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            cases = conn.execute(query).all()
            ids = [c.id for c in cases]
            extras = (
                {r.case_id: r for r in conn.execute(select(Open311Request).where(Open311Request.case_id.in_(ids)))}
                if ids
                else {}
            )
            due: dict[Any, dt.datetime] = {}
            if ids:
                for task in conn.execute(
                    select(CaseTask.case_id, CaseTask.due_at).where(
                        CaseTask.case_id.in_(ids), CaseTask.due_at.is_not(None)
                    )
                ):
                    if task.case_id not in due or task.due_at < due[task.case_id]:
                        due[task.case_id] = task.due_at
        catalog = pack.catalog
        views = []
        for case in cases:
            extra = extras.get(case.id)
            personal = [case.reporter_name, case.reporter_phone, extra.email if extra else None]
            matter = catalog.matters.get(case.matter or "")
            owner = catalog.units.get(case.owner_unit or "")
            closed = case.status in CLOSED_STAGES
            views.append(
                {
                    "service_request_id": str(case.id),
                    "status": "closed" if closed else "open",
                    "status_notes": f"{CHINESE.get(case.status, case.status)} {STAGE_ENGLISH.get(case.status, case.status)}",
                    "service_name": matter.name if matter else None,
                    "service_code": case.matter,
                    "description": mask_personal(case.description, personal),
                    "agency_responsible": owner.name if owner else case.owner_unit,
                    "service_notice": TIER_NOTICE.get(matter.tier) if matter else None,
                    "requested_datetime": w3(case.created_at),
                    "updated_datetime": w3(case.closed_at if closed and case.closed_at else case.updated_at),
                    "expected_datetime": None if closed else w3(due.get(case.id)),
                    "address": mask_personal(case.address, personal),
                    "address_id": extra.address_id if extra else None,
                    "zipcode": None,
                    "lat": case.lat,
                    "long": case.lng,
                    "media_url": extra.media_url if extra else None,
                }
            )
        return views


__all__ = ["Open311", "Open311Error", "Open311Projector", "mask_personal", "parse_w3", "report_form"]

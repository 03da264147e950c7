"""Task forms: what data a user task expects, validated with pydantic.

``processes/forms.yaml`` names one form per task action::

    review:
      approved: {type: boolean, required: true, variable: review_approved}
      opinion:  {type: text, max_length: 2000}

Field types: ``text`` (``max_length``), ``integer`` (``min``/``max``),
``boolean``, ``choice`` (one of ``options``), ``unit`` (a unit code of the
catalog, optionally of ``kind``), ``matter`` (a matter code of the catalog),
``datetime`` (ISO-8601 with a zone), ``assignments`` (a list of
``{unit, duty, due}``: who does what by when, as a joint consultation decides).
Dates given to a form (``datetime`` fields, an assignment's ``due``) must lie in the
future when the task is completed, and reach the workflow as RFC 3339 in UTC
(``2026-09-29T02:00:00.000000Z``), the one timestamp format of govflow.
``variable`` renames the field in the workflow data (default: the field name);
``required_when: {other_field: value}`` makes a field conditionally required;
``among: <variable>`` restricts unit values (also inside assignments) to the
keys of a dict in the task's data (e.g. the departments called out).
Unknown fields are refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, create_model

from govflow.engine.model.catalog import Catalog
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import FormValidationError, PackIssue

FIELD_TYPES = ("text", "integer", "boolean", "choice", "unit", "matter", "datetime", "assignments")


@dataclass(frozen=True)
class FormField:
    name: str
    type: str
    required: bool = False
    variable: str = ""
    max_length: int = 2000
    min: int | None = None
    max: int | None = None
    kind: str | None = None
    options: tuple[str, ...] = ()
    required_when: tuple[tuple[str, Any], ...] = ()
    among: str | None = None


class Assignment(BaseModel):
    """One line of a consultation opinion (会商意见): which unit does what by when."""

    model_config = ConfigDict(extra="forbid")
    unit: str = Field(min_length=1, max_length=64)
    duty: str = Field(min_length=1, max_length=1000)
    due: AwareDatetime


@dataclass
class Form:
    name: str
    fields: dict[str, FormField]
    model: type[BaseModel]

    def describe(self) -> dict[str, Any]:
        return {
            name: {k: v for k, v in f.__dict__.items() if v not in (None, "") and k != "name"}
            for name, f in self.fields.items()
        }

    def validate(
        self,
        data: Any,
        catalog: Catalog,
        *,
        task: str | None = None,
        context: Mapping[str, Any] | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Return workflow variables from form ``data`` or raise :class:`FormValidationError`.

        ``context`` is the task's workflow data (for ``among`` constraints); with ``now``,
        dates (``datetime`` fields, assignments' ``due``) must be later than it.
        """
        context = context or {}
        if data is None:
            data = {}
        try:
            parsed = self.model.model_validate(data)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False, include_input=False)
            ]
            raise FormValidationError(f"form {self.name!r} rejected the data", errors=errors, task=task) from None
        values = parsed.model_dump(exclude_unset=True, mode="json")
        errors = []
        for name, value in list(values.items()):  # dates: in the future, and RFC 3339 UTC (Z) for the workflow
            spec = self.fields[name]
            original = getattr(parsed, name)
            if spec.type == "datetime" and original is not None:
                if now is not None and original <= now:
                    errors.append({"loc": [name], "msg": f"must be later than now ({iso(now)})"})
                values[name] = iso(original)
            elif spec.type == "assignments" and original:
                for index, item in enumerate(original):
                    if now is not None and item.due <= now:
                        errors.append({"loc": [name, index, "due"], "msg": f"must be later than now ({iso(now)})"})
                    value[index]["due"] = iso(item.due)
        for name, spec in self.fields.items():
            for other, expected in spec.required_when:
                if values.get(other) == expected and values.get(name) in (None, ""):
                    errors.append({"loc": [name], "msg": f"required when {other} is {expected!r}"})
        for name, value in values.items():
            spec = self.fields[name]
            units = (
                [value]
                if spec.type == "unit"
                else [a["unit"] for a in value or []]
                if spec.type == "assignments"
                else []
            )
            for index, code in enumerate(units):
                loc: list[str | int] = [name] if spec.type == "unit" else [name, index, "unit"]
                if code is None:
                    continue
                unit = catalog.unit(code)
                if unit is None or (spec.kind and unit.kind != spec.kind):
                    errors.append({"loc": loc, "msg": f"{code!r} is not a {spec.kind or 'unit'} of {catalog.district}"})
                elif spec.among is not None and code not in (context.get(spec.among) or {}):
                    errors.append(
                        {
                            "loc": loc,
                            "msg": f"{code!r} is not one of {spec.among}: {', '.join(sorted(context.get(spec.among) or {}))}",
                        }
                    )
            if spec.type == "matter" and value is not None and value not in catalog.matters:
                errors.append({"loc": [name], "msg": f"{value!r} is not a matter of the catalog"})
        if errors:
            raise FormValidationError(f"form {self.name!r} rejected the data", errors=errors, task=task)
        return {self.fields[name].variable or name: value for name, value in values.items()}

    def recorded(self, data: Any) -> dict[str, Any]:
        """Validated form data as the record keeps it: as sent, every date in RFC 3339 UTC (Z)."""
        out = dict(data or {})
        for name, spec in self.fields.items():
            value = out.get(name)
            if spec.type == "datetime" and isinstance(value, str):
                out[name] = _utc(value)
            elif spec.type == "assignments" and isinstance(value, list):
                out[name] = [
                    {**item, "due": _utc(item["due"])}
                    if isinstance(item, dict) and isinstance(item.get("due"), str)
                    else item
                    for item in value
                ]
        return out


def _utc(text: str) -> str:
    try:
        return iso(dt.datetime.fromisoformat(text))
    except ValueError:
        return text


def _annotation(spec: FormField) -> Any:
    if spec.type == "integer":
        return Annotated[StrictInt, Field(ge=spec.min, le=spec.max)]
    if spec.type == "boolean":
        return StrictBool
    if spec.type == "choice":
        return Literal[spec.options]
    if spec.type == "datetime":
        return AwareDatetime
    if spec.type == "assignments":
        return Annotated[list[Assignment], Field(min_length=1 if spec.required else 0, max_length=50)]
    return Annotated[str, Field(min_length=1 if spec.required else 0, max_length=spec.max_length)]


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _field_shape_problem(name: Any, raw: Any) -> str | None:
    """What is wrong with the shape of a field's entry (types of its keys), or None."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name) or name.startswith("model_"):
        return "a field name is 1-64 letters, digits and _ starting with a letter (not model_…)"
    if not isinstance(raw, dict):
        return "must be a mapping of its properties"
    if "options" in raw and not isinstance(raw["options"], list | type(None)):
        return "options must be a list"
    if "max_length" in raw and (not isinstance(raw["max_length"], int) or isinstance(raw["max_length"], bool)):
        return "max_length must be an integer"
    for key in ("min", "max"):
        if raw.get(key) is not None and (not isinstance(raw[key], int | float) or isinstance(raw[key], bool)):
            return f"{key} must be a number"
    for key in ("variable", "kind", "among"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            return f"{key} must be text"
    return None


def parse_forms(data: Any, filename: str = "processes/forms.yaml") -> tuple[dict[str, Form], list[PackIssue]]:
    issues: list[PackIssue] = []
    forms: dict[str, Form] = {}
    if not isinstance(data, dict):
        return {}, [PackIssue(filename, "must map form names to their fields")]
    for form_name, raw_fields in data.items():
        raw_fields = raw_fields or {}
        if not isinstance(raw_fields, dict):
            issues.append(PackIssue(filename, f"form {form_name!r}: fields must be a mapping"))
            continue
        fields: dict[str, FormField] = {}
        for field_name, raw in raw_fields.items():
            raw = raw or {}
            shape = _field_shape_problem(field_name, raw)
            if shape is not None:
                issues.append(PackIssue(filename, f"form {form_name!r} field {field_name!r}: {shape}"))
                continue
            ftype = raw.get("type")
            if ftype not in FIELD_TYPES:
                issues.append(
                    PackIssue(
                        filename,
                        f"form {form_name!r} field {field_name!r}: type must be one of {', '.join(FIELD_TYPES)}",
                    )
                )
                continue
            unknown = set(raw) - {
                "type",
                "required",
                "variable",
                "max_length",
                "min",
                "max",
                "kind",
                "options",
                "required_when",
                "among",
            }
            if unknown:
                issues.append(
                    PackIssue(filename, f"form {form_name!r} field {field_name!r}: unknown keys {sorted(unknown)}")
                )
                continue
            options = tuple(str(o) for o in raw.get("options") or ())
            if ftype == "choice" and not options:
                issues.append(PackIssue(filename, f"form {form_name!r} field {field_name!r}: a choice needs options"))
                continue
            required_when = raw.get("required_when") or {}
            if not isinstance(required_when, dict):
                issues.append(
                    PackIssue(
                        filename, f"form {form_name!r} field {field_name!r}: required_when must map a field to a value"
                    )
                )
                continue
            fields[field_name] = FormField(
                field_name,
                ftype,
                bool(raw.get("required", False)),
                str(raw.get("variable") or ""),
                int(raw.get("max_length", 2000)),
                raw.get("min"),
                raw.get("max"),
                raw.get("kind"),
                options,
                tuple(required_when.items()),
                raw.get("among"),
            )
        definitions = {
            name: (_annotation(spec), ...) if spec.required else (_annotation(spec) | None, None)
            for name, spec in fields.items()
        }
        try:
            model = create_model(f"Form_{form_name}", __config__=ConfigDict(extra="forbid"), **definitions)  # type: ignore[call-overload]
        except Exception as exc:  # a field name or bound pydantic cannot build a model from
            issues.append(PackIssue(filename, f"form {form_name!r}: cannot be built: {type(exc).__name__}: {exc}"))
            continue
        forms[str(form_name)] = Form(str(form_name), fields, model)
    return forms, issues

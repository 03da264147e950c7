"""Task forms: what data a user task expects, validated with pydantic.

``processes/forms.yaml`` names one form per task action::

    review:
      approved: {type: boolean, required: true, variable: review_approved}
      opinion:  {type: text, max_length: 2000}

Field types: ``text`` (``max_length``), ``integer`` (``min``/``max``),
``boolean``, ``unit`` (a unit code of the catalog, optionally of ``kind``),
``matter`` (a matter code of the catalog). ``variable`` renames the field in
the workflow data (default: the field name). Unknown fields are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, create_model

from .catalog import Catalog
from .errors import FormValidationError, PackIssue

FIELD_TYPES = ("text", "integer", "boolean", "unit", "matter")


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

    def validate(self, data: Any, catalog: Catalog, *, task: str | None = None) -> dict[str, Any]:
        """Return workflow variables from form ``data`` or raise :class:`FormValidationError`."""
        if data is None:
            data = {}
        try:
            parsed = self.model.model_validate(data)
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False, include_input=False)]
            raise FormValidationError(f"form {self.name!r} rejected the data", errors=errors, task=task) from None
        values = parsed.model_dump(exclude_unset=True)
        errors = []
        for name, value in values.items():
            spec = self.fields[name]
            if spec.type == "unit" and value is not None:
                unit = catalog.unit(value)
                if unit is None or (spec.kind and unit.kind != spec.kind):
                    errors.append({"loc": [name], "msg": f"{value!r} is not a {spec.kind or 'unit'} of {catalog.district}"})
            if spec.type == "matter" and value is not None and value not in catalog.matters:
                errors.append({"loc": [name], "msg": f"{value!r} is not a matter of the catalog"})
        if errors:
            raise FormValidationError(f"form {self.name!r} rejected the data", errors=errors, task=task)
        return {self.fields[name].variable or name: value for name, value in values.items()}


def _annotation(spec: FormField) -> Any:
    if spec.type == "integer":
        return Annotated[StrictInt, Field(ge=spec.min, le=spec.max)]
    if spec.type == "boolean":
        return StrictBool
    return Annotated[str, Field(min_length=1 if spec.required else 0, max_length=spec.max_length)]


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
            ftype = raw.get("type")
            if ftype not in FIELD_TYPES:
                issues.append(PackIssue(filename, f"form {form_name!r} field {field_name!r}: type must be one of {', '.join(FIELD_TYPES)}"))
                continue
            unknown = set(raw) - {"type", "required", "variable", "max_length", "min", "max", "kind"}
            if unknown:
                issues.append(PackIssue(filename, f"form {form_name!r} field {field_name!r}: unknown keys {sorted(unknown)}"))
                continue
            fields[field_name] = FormField(field_name, ftype, bool(raw.get("required", False)), str(raw.get("variable") or ""),
                                           int(raw.get("max_length", 2000)), raw.get("min"), raw.get("max"), raw.get("kind"))
        definitions = {
            name: (_annotation(spec), ...) if spec.required else (_annotation(spec) | None, None)
            for name, spec in fields.items()
        }
        model = create_model(f"Form_{form_name}", __config__=ConfigDict(extra="forbid"), **definitions)  # type: ignore[call-overload]
        forms[str(form_name)] = Form(str(form_name), fields, model)
    return forms, issues

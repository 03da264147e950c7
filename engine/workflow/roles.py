"""The engine–diagram contract: roles that diagram elements declare.

The engine never assumes an element id, a signal name or a variable name of a
diagram. What it relies on, an element declares with a ``spiffworkflow``
property, the same way user tasks declare ``stage``/``assignee``/``action`` and
boundary events declare ``record``:

============  ===================================  ====================================================
``role``      on                                   what the engine does with it
============  ===================================  ====================================================
withdrawal    a signal catch event                 the reporter's withdrawal (撤回) is this event's
                                                   signal
withdrawn     an end event                         a case that ended here is ``withdrawn``, not
                                                   ``evaluated``
call_out      a signal catch event (the signal     a call-out (呼叫) is this event's signal; its
              carries ``spiffworkflow:variableName``)  payload is stored under that variable
report_in     a multi-instance user task over the  one report-in (报到) per called department; the
              call-out variable                    instance's input item names its department
evaluation    a user task, with ``rating_field``   the reporter's rating (评价) is the form field
                                                   ``rating_field`` (an integer 1–5)
dispatch      a user task whose form sets          completing it re-routes the case (分拨, 督办): the
              ``owner_unit`` and/or ``matter``     form's routing variables become the case's owner
                                                   and matter
return_visit  a user task, with ``rating_field``   the return visit (回访): the resident's view,
                                                   recorded as a ``return_visit`` rating (1–5) of the
                                                   owner street
responsibility_ruling  a user task whose form has a       the standing responsibility meeting's ruling
              ``unit`` field of kind ``department``  (长效责任机制): that department becomes the main
                                                   unit of the case's matter in a new pack version
                                                   (the case is its provenance); the case moves to it
============  ===================================  ====================================================

The variables the engine itself puts into every case at start are fixed
vocabulary (:data:`CASE_VARIABLES`): diagrams may read them in conditions.

:func:`find_roles` reads the declarations of one diagram file;
:func:`check_process_roles` checks, at pack validation, that the pack's main
process (with the processes it calls) declares the roles every case needs,
once each, on elements of the right kind — each issue with file, line and
element, like every other pack issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from govflow.engine.model.errors import PackIssue

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

#: every role an element may declare
ROLES = (
    "withdrawal",
    "withdrawn",
    "call_out",
    "report_in",
    "evaluation",
    "dispatch",
    "return_visit",
    "responsibility_ruling",
)
#: roles each case's process must declare (with the processes it calls)
REQUIRED_ROLES = ("withdrawal", "withdrawn")
#: roles that may be declared at most once per process tree
SINGLE_ROLES = (
    "withdrawal",
    "withdrawn",
    "call_out",
    "report_in",
    "evaluation",
    "return_visit",
    "responsibility_ruling",
)
#: the variables the engine sets in every case when it starts (diagrams read them)
CASE_VARIABLES = ("case_id", "district", "owner_unit", "matter", "tier", "review_approved")
#: the routing variables a ``dispatch`` task's form may set
ROUTING_VARIABLES = ("owner_unit", "matter")

#: which element kinds may carry each role
_KINDS: dict[str, tuple[str, ...]] = {
    "withdrawal": ("boundaryEvent", "intermediateCatchEvent"),
    "withdrawn": ("endEvent",),
    "call_out": ("boundaryEvent", "intermediateCatchEvent"),
    "report_in": ("userTask",),
    "evaluation": ("userTask",),
    "dispatch": ("userTask",),
    "return_visit": ("userTask",),
    "responsibility_ruling": ("userTask",),
}
#: which element kinds may carry each role (read by tools that edit diagrams)
ROLE_ELEMENTS: dict[str, tuple[str, ...]] = _KINDS


@dataclass(frozen=True)
class RoleDeclaration:
    """One element declaring a role, as found in a diagram file."""

    role: str
    element: str
    process: str
    file: str
    line: int | None
    signal: str | None = None  # withdrawal / call_out: the signal's name
    variable: str | None = None  # call_out: the payload variable; report_in: the collection it iterates
    item: str | None = None  # report_in: the per-instance input item (one called department)
    field: str | None = None  # evaluation, return_visit: the rating form field
    action: str | None = None  # user tasks: their action (form name)


@dataclass(frozen=True)
class DiagramRoles:
    """The roles of one case process (the process and every process it calls), by role."""

    withdrawal_signal: str
    withdrawn_ends: frozenset[str]
    call_out_signal: str | None = None
    call_out_variable: str | None = None
    report_in_task: str | None = None
    report_in_item: str | None = None
    evaluation_task: str | None = None
    rating_field: str | None = None
    dispatch_tasks: frozenset[str] = field(default_factory=frozenset)
    return_visit_task: str | None = None
    return_visit_field: str | None = None
    ruling_task: str | None = None
    ruling_variable: str | None = None  # where the ruling's form puts the department it names

    def role_of(self, element: str) -> str | None:
        """The role a user task declares (report_in, evaluation, dispatch, return_visit), or None."""
        if element == self.report_in_task:
            return "report_in"
        if element == self.evaluation_task:
            return "evaluation"
        if element == self.return_visit_task:
            return "return_visit"
        if element == self.ruling_task:
            return "responsibility_ruling"
        if element in self.dispatch_tasks:
            return "dispatch"
        return None


def _props(elem: etree._Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for prop in elem.iter(f"{{{SPIFF_NS}}}property"):
        # properties of nested elements (a sub-process's children) are not this element's
        owner = prop.getparent().getparent().getparent() if prop.getparent() is not None else None
        if owner is elem:
            found[prop.get("name") or ""] = prop.get("value") or ""
    return found


def _process_of(elem: etree._Element) -> str:
    node = elem.getparent()
    while node is not None and etree.QName(node).localname != "process":
        node = node.getparent()
    return node.get("id") if node is not None else "?"


def find_roles(root: etree._Element, filename: str) -> tuple[list[RoleDeclaration], list[PackIssue]]:
    """Every role declared in one diagram, and what is wrong with each declaration."""
    signals = {s.get("id"): s for s in root.iter(f"{{{BPMN_NS}}}signal")}
    found: list[RoleDeclaration] = []
    issues: list[PackIssue] = []
    for elem in root.iter():
        if not isinstance(elem.tag, str) or not elem.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        props = _props(elem)
        role = props.get("role")
        if role is None:
            continue
        ident, local, line = elem.get("id") or "?", etree.QName(elem).localname, elem.sourceline

        def issue(message: str, ident: str = ident, line: int | None = line) -> None:
            issues.append(PackIssue(filename, message, line=line, element=ident))

        if role not in ROLES:
            issue(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
            continue
        if local not in _KINDS[role]:
            issue(f"role {role!r} belongs on a {' or '.join(_KINDS[role])}, not a {local}")
            continue
        decl = RoleDeclaration(role, ident, _process_of(elem), filename, line, action=props.get("action"))
        if role in ("withdrawal", "call_out"):
            definition = elem.find(f"{{{BPMN_NS}}}signalEventDefinition")
            signal = signals.get(definition.get("signalRef")) if definition is not None else None
            if signal is None or not signal.get("name"):
                issue(f"role {role!r} needs a signal event definition referring to a named bpmn:signal")
                continue
            variable = signal.findtext(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}variableName")
            if role == "call_out" and not (variable or "").strip():
                issue("the call-out signal needs a spiffworkflow:variableName (the called departments go there)")
                continue
            decl = RoleDeclaration(
                role, ident, decl.process, filename, line, signal=signal.get("name"), variable=(variable or "").strip()
            )
        elif role == "report_in":
            loop = elem.find(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics")
            collection = loop.findtext(f"{{{BPMN_NS}}}loopDataInputRef") if loop is not None else None
            item = loop.find(f"{{{BPMN_NS}}}inputDataItem") if loop is not None else None
            if loop is None or not (collection or "").strip() or item is None or not item.get("name"):
                issue("role 'report_in' needs a multi-instance task over a loopDataInputRef with an inputDataItem")
                continue
            decl = RoleDeclaration(
                role,
                ident,
                decl.process,
                filename,
                line,
                variable=(collection or "").strip(),
                item=item.get("name"),
                action=props.get("action"),
            )
        elif role in ("evaluation", "return_visit"):
            if not props.get("rating_field"):
                issue(f"role {role!r} needs a rating_field property (the form field holding the 1–5 rating)")
                continue
            decl = RoleDeclaration(
                role, ident, decl.process, filename, line, field=props["rating_field"], action=props.get("action")
            )
        found.append(decl)
    return found, issues


def _first(by_role: Mapping[str, list[RoleDeclaration]], role: str) -> RoleDeclaration | None:
    found = by_role.get(role)
    return found[0] if found else None


def check_process_roles(
    process: str,
    called: Iterable[str],
    declarations: Iterable[RoleDeclaration],
    forms: Mapping[str, object],
) -> tuple[DiagramRoles | None, list[PackIssue]]:
    """The roles of a case process (``process`` and the processes it ``called``), checked."""
    tree = {process, *called}
    mine = [d for d in declarations if d.process in tree]
    issues: list[PackIssue] = []
    by_role: dict[str, list[RoleDeclaration]] = {}
    for decl in mine:
        by_role.setdefault(decl.role, []).append(decl)
    for role in REQUIRED_ROLES:
        if role not in by_role:
            issues.append(
                PackIssue(
                    "?",
                    f"process {process!r} declares no element with role {role!r} "
                    f"(a spiffworkflow property role={role} on a {' or '.join(_KINDS[role])})",
                    element=process,
                )
            )
    for role in SINGLE_ROLES:
        several = by_role.get(role, [])
        for extra in several[1:]:
            issues.append(
                PackIssue(
                    extra.file,
                    f"role {role!r} is declared twice in process {process!r} (also by {several[0].element})",
                    line=extra.line,
                    element=extra.element,
                )
            )
    call_out = _first(by_role, "call_out")
    report_in = _first(by_role, "report_in")
    if (call_out is None) != (report_in is None):
        there = call_out or report_in
        assert there is not None
        issues.append(
            PackIssue(
                there.file,
                "roles 'call_out' and 'report_in' go together (the call opens one report-in per department)",
                line=there.line,
                element=there.element,
            )
        )
    elif call_out is not None and report_in is not None and call_out.variable != report_in.variable:
        issues.append(
            PackIssue(
                report_in.file,
                f"the report-in task iterates {report_in.variable!r}, but the call-out signal stores the called "
                f"departments in {call_out.variable!r}",
                line=report_in.line,
                element=report_in.element,
            )
        )
    evaluation = _first(by_role, "evaluation")
    return_visit = _first(by_role, "return_visit")
    for rated in (evaluation, return_visit):
        if rated is None:
            continue
        form = forms.get(rated.action or "")
        fields = getattr(form, "fields", {}) or {}
        if rated.field not in fields:
            issues.append(
                PackIssue(
                    rated.file,
                    f"rating_field {rated.field!r} is not a field of the form {rated.action!r}",
                    line=rated.line,
                    element=rated.element,
                )
            )
    ruling, ruling_variable = _first(by_role, "responsibility_ruling"), None
    if ruling is not None:
        form = forms.get(ruling.action or "")
        named = [
            getattr(f, "variable", None) or name
            for name, f in (getattr(form, "fields", {}) or {}).items()
            if getattr(f, "type", None) == "unit" and getattr(f, "kind", None) == "department"
        ]
        if len(named) != 1:
            issues.append(
                PackIssue(
                    ruling.file,
                    f"a responsibility ruling's form must have one unit field of kind department; "
                    f"form {ruling.action!r} has {len(named)}",
                    line=ruling.line,
                    element=ruling.element,
                )
            )
        else:
            ruling_variable = named[0]
    for decl in by_role.get("dispatch", []):
        form = forms.get(decl.action or "")
        variables = {getattr(f, "variable", None) or name for name, f in (getattr(form, "fields", {}) or {}).items()}
        if not variables & set(ROUTING_VARIABLES):
            issues.append(
                PackIssue(
                    decl.file,
                    f"a dispatch task's form must set {' or '.join(ROUTING_VARIABLES)}; form {decl.action!r} sets neither",
                    line=decl.line,
                    element=decl.element,
                )
            )
    if issues:
        return None, issues
    withdrawal = by_role["withdrawal"][0]
    return DiagramRoles(
        withdrawal_signal=withdrawal.signal or "",
        withdrawn_ends=frozenset(d.element for d in by_role["withdrawn"]),
        call_out_signal=call_out.signal if call_out else None,
        call_out_variable=call_out.variable if call_out else None,
        report_in_task=report_in.element if report_in else None,
        report_in_item=report_in.item if report_in else None,
        evaluation_task=evaluation.element if evaluation else None,
        rating_field=evaluation.field if evaluation else None,
        dispatch_tasks=frozenset(d.element for d in by_role.get("dispatch", [])),
        return_visit_task=return_visit.element if return_visit else None,
        return_visit_field=return_visit.field if return_visit else None,
        ruling_task=ruling.element if ruling else None,
        ruling_variable=ruling_variable,
    ), []


__all__ = [
    "CASE_VARIABLES",
    "REQUIRED_ROLES",
    "ROLES",
    "ROLE_ELEMENTS",
    "ROUTING_VARIABLES",
    "DiagramRoles",
    "RoleDeclaration",
    "check_process_roles",
    "find_roles",
]

"""Loading diagrams safely: XML safety, schema, script checks, Spiff parse.

Every diagram that reaches SpiffWorkflow went through :func:`compile_diagrams`:

1. size bound, then XML parsed with entity resolution, DTDs and network off;
   any ``<!DOCTYPE>`` is refused outright (XXE, billion laughs);
2. validated against the BPMN 2.0 / DMN 1.3 schemas shipped with Spiff
   (every schema error reported with its line);
3. element ids ``Start``/``End`` refused (they clash with Spiff internals);
   size bounded (very long chains overflow Spiff's recursion);
4. every condition, script and payload expression checked by the sandbox's
   :func:`~govflow.engine.workflow.sandbox.check_script`;
5. parsed by the Spiff dialect parser and every executable process built once
   (missing called processes and decisions show up here).

Failures become :class:`~govflow.engine.model.errors.PackIssue` items with file,
line and element id; nothing is half-loaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from govflow.engine.cache import Cache
from govflow.engine.model.errors import EngineFault, PackIssue
from govflow.engine.model.hashing import content_hash
from govflow.engine.model.lifecycle import RECORD_KINDS
from govflow.engine.workflow.roles import DiagramRoles, RoleDeclaration, check_process_roles, find_roles
from govflow.engine.workflow.sandbox import ScriptRejected, check_script

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

MAX_DIAGRAM_BYTES = 2 * 1024 * 1024
MAX_FLOW_NODES = 400
RESERVED_IDS = frozenset({"Start", "End"})

#: What a user task may name as its assignee; resolved against the case at run time:
#: the case's owner unit, the district's command centre, the reporter, the department
#: of a multi-instance call-out instance (``called``), or the call-out's main department; the
#: standing responsibility meeting and the city (units of those kinds, else the command centre).
ASSIGNEES = frozenset(
    {"owner", "command_centre", "reporter", "called", "main_department", "responsibility_meeting", "city"}
)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml_safely(content: bytes, filename: str) -> etree._Element:
    """Parse untrusted XML; raise :class:`PackIssueError` with file and line on failure."""
    if len(content) > MAX_DIAGRAM_BYTES:
        raise PackIssueError(PackIssue(filename, f"file is larger than {MAX_DIAGRAM_BYTES} bytes"))
    head = content[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in content.lower():
        raise PackIssueError(
            PackIssue(filename, "DOCTYPE/ENTITY declarations are not allowed (XXE / entity expansion)", line=1)
        )
    try:
        root = etree.fromstring(content, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise PackIssueError(PackIssue(filename, f"malformed XML: {exc.msg}", line=exc.lineno)) from None
    if root.getroottree().docinfo.doctype:
        raise PackIssueError(PackIssue(filename, "DOCTYPE declarations are not allowed", line=1))
    return root


class PackIssueError(Exception):
    """Internal carrier for a single issue found while loading one file."""

    def __init__(self, issue: PackIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


@dataclass(frozen=True)
class UserTaskInfo:
    """What the engine needs to know about a user task, read from its properties."""

    name: str
    title: str
    stage: str
    assignee: str
    action: str
    form_variable: str | None = None


@dataclass
class CompiledDiagrams:
    """The immutable result of compiling a pack's diagrams."""

    specs: dict[str, Any]  # process id -> spec
    subprocess_specs: dict[str, dict[str, Any]]  # process id -> {called id -> spec}
    user_tasks: dict[str, UserTaskInfo] = field(default_factory=dict)
    #: process id -> the roles its elements (and those of the processes it calls) declare
    roles: dict[str, DiagramRoles] = field(default_factory=dict)
    #: process id -> why its roles are incomplete (reported when a pack runs that process)
    role_issues: dict[str, list[PackIssue]] = field(default_factory=dict)

    def roles_of(self, process_id: str) -> DiagramRoles:
        """The declared roles of a case process (validated when its pack was loaded)."""
        try:
            return self.roles[process_id]
        except KeyError:
            raise EngineFault(f"process {process_id!r} declares no complete set of diagram roles") from None


@functools.cache
def _schema(kind: str) -> etree.XMLSchema:
    if kind == "bpmn":
        return VALIDATOR.validator
    import SpiffWorkflow.dmn.parser as dmn_parser

    path = Path(dmn_parser.__file__).parent / "schema" / "DMN13.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def _schema_issues(root: etree._Element, filename: str, kind: str) -> list[PackIssue]:
    schema = _schema(kind)
    if kind == "bpmn":
        VALIDATOR.preprocess(root)
    if schema.validate(root):
        return []
    return [PackIssue(filename, f"schema: {err.message}", line=err.line) for err in schema.error_log]


def _structure_issues(root: etree._Element, filename: str) -> list[PackIssue]:
    issues: list[PackIssue] = []
    flow_nodes = 0
    for elem in root.iter():
        if not isinstance(elem.tag, str):
            continue
        ident = elem.get("id")
        if ident in RESERVED_IDS:
            issues.append(
                PackIssue(
                    filename,
                    f"element id {ident!r} is reserved by the engine; rename it",
                    line=elem.sourceline,
                    element=ident,
                )
            )
        local = etree.QName(elem).localname
        if elem.getparent() is not None and etree.QName(elem.getparent()).localname in ("process", "subProcess"):
            if local not in (
                "sequenceFlow",
                "laneSet",
                "extensionElements",
                "documentation",
                "textAnnotation",
                "association",
                "dataObject",
                "dataObjectReference",
                "dataStoreReference",
                "ioSpecification",
            ):
                flow_nodes += 1
        for source, mode in _scripts_of(elem, local):
            try:
                check_script(source, mode=mode)
            except ScriptRejected as exc:
                owner = _owner_id(elem)
                issues.append(
                    PackIssue(
                        filename,
                        f"unsafe or invalid {'expression' if mode == 'eval' else 'script'}: {exc}",
                        line=elem.sourceline,
                        element=owner,
                    )
                )
    if flow_nodes > MAX_FLOW_NODES:
        issues.append(PackIssue(filename, f"diagram has {flow_nodes} flow nodes; at most {MAX_FLOW_NODES} are allowed"))
    # the XSD does not check references and Spiff's own message for a dangling one is misleading
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        for attr in ("sourceRef", "targetRef"):
            ref = flow.get(attr)
            if ref and ref not in ids:
                issues.append(
                    PackIssue(
                        filename,
                        f"sequence flow {attr} {ref!r} names no element of this diagram",
                        line=flow.sourceline,
                        element=flow.get("id"),
                    )
                )
    return issues


def _scripts_of(elem: etree._Element, local: str) -> Iterable[tuple[str, str]]:
    if local == "parameter" and elem.tag.startswith(f"{{{SPIFF_NS}}}") and (elem.get("value") or "").strip():
        return ((elem.get("value").strip(), "eval"),)  # service task parameters are expressions
    text = (elem.text or "").strip()
    if not text:
        return ()
    if local in ("messagePayload", "expression") and elem.tag.startswith(f"{{{SPIFF_NS}}}"):
        return ((text, "eval"),)
    if local in (
        "conditionExpression",
        "payloadExpression",
        "timeDuration",
        "timeDate",
        "timeCycle",
        "inputExpression",
        "text",
        "loopCardinality",
        "completionCondition",
    ):
        if local == "text" and etree.QName(elem.getparent()).localname not in (
            "inputEntry",
            "outputEntry",
            "inputExpression",
        ):
            return ()
        if local == "text" and text == "-":
            return ()
        return ((text, "eval"),)
    if local in ("script", "preScript", "postScript"):
        return ((text, "exec"),)
    return ()


def _owner_id(elem: etree._Element) -> str | None:
    node: etree._Element | None = elem
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def _user_task_issues(
    root: etree._Element, filename: str, forms: Mapping[str, Any], stages: Iterable[str]
) -> tuple[list[PackIssue], dict[str, UserTaskInfo]]:
    issues: list[PackIssue] = []
    infos: dict[str, UserTaskInfo] = {}
    stage_set = set(stages)
    for task in root.iter(f"{{{BPMN_NS}}}userTask", f"{{{BPMN_NS}}}manualTask"):
        tid = task.get("id")
        props = {p.get("name"): p.get("value") for p in task.iter(f"{{{SPIFF_NS}}}property")}
        missing = [k for k in ("stage", "assignee", "action") if not props.get(k)]
        if missing:
            issues.append(
                PackIssue(
                    filename,
                    f"user task needs spiffworkflow properties {', '.join(missing)}",
                    line=task.sourceline,
                    element=tid,
                )
            )
            continue
        if props["assignee"] not in ASSIGNEES:
            issues.append(
                PackIssue(
                    filename,
                    f"unknown task assignee {props['assignee']!r}; expected one of {sorted(ASSIGNEES)}",
                    line=task.sourceline,
                    element=tid,
                )
            )
        if props["stage"] not in stage_set:
            issues.append(
                PackIssue(filename, f"unknown lifecycle stage {props['stage']!r}", line=task.sourceline, element=tid)
            )
        if props["action"] not in forms:
            issues.append(
                PackIssue(
                    filename,
                    f"no form named {props['action']!r} in processes/forms.yaml",
                    line=task.sourceline,
                    element=tid,
                )
            )
        infos[tid] = UserTaskInfo(
            tid, task.get("name") or tid, props["stage"], props["assignee"], props["action"], props.get("form_variable")
        )
    return issues, infos


class _Refused(Exception):
    """Carries the issues of diagrams that did not compile out of a cache build (never cached)."""

    def __init__(self, issues: list[PackIssue]) -> None:
        super().__init__(f"{len(issues)} issue(s)")
        self.issues = issues


def compile_diagrams(
    files: Mapping[str, bytes],
    *,
    forms: Mapping[str, Any],
    stages: Iterable[str],
    cache: Cache[str, CompiledDiagrams] | None = None,
) -> tuple[CompiledDiagrams | None, list[PackIssue]]:
    """Validate and parse ``files`` (relative name -> bytes; ``.bpmn`` and ``.dmn``).

    Returns the compiled diagrams, or ``None`` and the list of issues. Compiled
    specs are immutable; with a ``cache`` (the application's, see
    :mod:`govflow.engine.cache`) they are kept by the content hash of the
    diagrams and of the forms they are checked against, so pack versions with the
    same diagrams share one set of spec objects and concurrent loads compile once.
    """
    stages = list(stages)
    if cache is None:
        return _compile(files, forms=forms, stages=stages)
    form_digest = {name: repr(getattr(form, "fields", form)) for name, form in forms.items()}
    key = content_hash(
        {**files, "\0forms": repr(sorted(form_digest.items())).encode(), "\0stages": repr(stages).encode()}
    )

    def build() -> CompiledDiagrams:
        compiled, issues = _compile(files, forms=forms, stages=stages)
        if compiled is None:
            raise _Refused(issues)
        return compiled

    try:
        return cache.get(key, build), []
    except _Refused as refused:
        return None, refused.issues


def _compile(
    files: Mapping[str, bytes], *, forms: Mapping[str, Any], stages: list[str]
) -> tuple[CompiledDiagrams | None, list[PackIssue]]:
    issues: list[PackIssue] = []
    roots: dict[str, tuple[str, etree._Element]] = {}
    user_tasks: dict[str, UserTaskInfo] = {}
    declarations: list[RoleDeclaration] = []
    for name in sorted(files):
        kind = "dmn" if name.endswith(".dmn") else "bpmn"
        try:
            root = parse_xml_safely(files[name], name)
        except PackIssueError as exc:
            issues.append(exc.issue)
            continue
        file_issues = _schema_issues(root, name, kind)
        file_issues += _structure_issues(root, name)
        if kind == "bpmn":
            ut_issues, infos = _user_task_issues(root, name, forms, stages)
            file_issues += ut_issues
            user_tasks.update(infos)
            found, declaration_issues = find_roles(root, name)
            declarations += found
            file_issues += declaration_issues + _record_issues(root, name)
        issues += file_issues
        if not file_issues:
            roots[name] = (kind, root)
    if issues:
        return None, issues

    parser = SpiffBpmnParser(validator=None)
    try:
        for name, (kind, root) in roots.items():
            if kind == "bpmn":
                parser.add_bpmn_xml(root, filename=name)
            else:
                parser.add_dmn_xml(root, filename=name)
    except ValidationException as exc:
        return None, [_from_validation(exc)]
    except SpiffWorkflowException as exc:
        return None, [PackIssue("?", str(exc))]

    specs: dict[str, Any] = {}
    subs: dict[str, dict[str, Any]] = {}
    for pid in parser.get_process_ids():
        try:
            spec = parser.get_spec(pid)
            sub = parser.get_subprocess_specs(pid)
            BpmnWorkflow(spec, sub)  # surfaces missing called processes
        except ValidationException as exc:
            issues.append(_from_validation(exc, _file_of(parser, pid), pid))
            continue
        except SpiffWorkflowException as exc:
            issues.append(PackIssue(_file_of(parser, pid), str(exc), element=pid))
            continue
        specs[pid] = spec
        subs[pid] = sub
    if issues:
        return None, issues
    roles: dict[str, DiagramRoles] = {}
    role_issues: dict[str, list[PackIssue]] = {}
    for pid in specs:
        checked, problems = check_process_roles(pid, subs[pid], declarations, forms)
        if checked is not None:
            roles[pid] = checked
        else:
            where = _file_of(parser, pid)
            role_issues[pid] = [replace(p, file=where) if p.file == "?" else p for p in problems]
    return CompiledDiagrams(specs, subs, user_tasks, roles, role_issues), []


def _record_issues(root: etree._Element, filename: str) -> list[PackIssue]:
    """``record`` properties must name a kind of fact the engine knows (a typo would record nothing useful)."""
    issues = []
    for prop in root.iter(f"{{{SPIFF_NS}}}property"):
        if prop.get("name") == "record" and prop.get("value") not in RECORD_KINDS:
            owner = _owner_id(prop)
            issues.append(
                PackIssue(
                    filename,
                    f"unknown record kind {prop.get('value')!r}; expected one of {', '.join(RECORD_KINDS)}",
                    line=prop.sourceline,
                    element=owner,
                )
            )
    return issues


def _from_validation(exc: ValidationException, file: str = "?", element: str | None = None) -> PackIssue:
    message = str(exc).split("\n")[0]
    return PackIssue(
        getattr(exc, "file_name", None) or file,
        message,
        line=getattr(exc, "line_number", None) or None,
        element=getattr(exc, "id", None) or element,
    )


def _file_of(parser: SpiffBpmnParser, pid: str) -> str:
    proc = parser.process_parsers.get(pid)
    return getattr(proc, "filename", None) or "?"


def files_defining(files: Mapping[str, bytes], process_ids: Iterable[str]) -> list[str]:
    """The diagram files (``.bpmn``) that define any of ``process_ids``, in the order of the ids.

    For showing a case on its diagrams: the file of its process first, then those of the
    processes it calls. Files that do not parse are skipped (a deployed pack has none).
    """
    wanted = list(dict.fromkeys(process_ids))
    where: dict[str, str] = {}
    for name in sorted(files):
        if not name.endswith(".bpmn"):
            continue
        try:
            root = parse_xml_safely(files[name], name)
        except PackIssueError:
            continue
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            where.setdefault(process.get("id") or "", name)
    return list(dict.fromkeys(where[p] for p in wanted if p in where))

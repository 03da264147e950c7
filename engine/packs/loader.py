"""Process packs: read, validate and compile a district's pack.

A pack is a set of files (a folder or a zip of one)::

    pack.yaml            name, version, district, process, plugins, disabled_plugins,
                         settings, extends (a base pack: see govflow.engine.packs.compose)
    catalog.yaml         district, units, matters           (govflow.engine.model.catalog)
    boundaries.geojson   street territories
    processes/*.bpmn     diagrams; processes/*.dmn decisions; processes/forms.yaml
    policies/model.conf  the Casbin model; policies/policy.csv its p rows
    policies/responsibility.yaml  the responsibility list (govflow.engine.model.responsibility)
    policies/*.yaml      demo principals

:func:`load_pack` validates *everything* and either returns an immutable
:class:`LoadedPack` or raises :class:`~govflow.engine.model.errors.PackError` listing
every issue (file, line, element, what is wrong). A loaded pack is keyed by its
content hash; the spec objects inside are shared by every case of that version.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from govflow.engine.access.authz import Authorizer, parse_policy_rows
from govflow.engine.access.identity import parse_principals
from govflow.engine.cache import Cache
from govflow.engine.model.calendar import WeekdayCalendar, WorkCalendar, parse_deadline_settings
from govflow.engine.model.catalog import Catalog, Territory, load_yaml, parse_boundaries, parse_catalog
from govflow.engine.model.errors import GovflowError, InvalidInput, PackError, PackIssue
from govflow.engine.model.forms import Form, parse_forms
from govflow.engine.model.gazetteer import Gazetteer, parse_gazetteer
from govflow.engine.model.hashing import content_hash
from govflow.engine.model.lifecycle import Stage
from govflow.engine.model.responsibility import ResponsibilityList, parse_responsibility
from govflow.engine.packs.compose import BaseResolver, compose, parse_extends
from govflow.engine.packs.sourcemap import Located, SourceMap, line_of_path, locate_yaml, with_path_line
from govflow.engine.simulation.scenario import FILENAME as SCENARIO_FILE
from govflow.engine.simulation.scenario import scenario_issues
from govflow.engine.workflow.bpmn import CompiledDiagrams, compile_diagrams
from govflow.engine.workflow.decisions import Decisions, compile_decisions
from govflow.engine.workflow.runtime import Runtime
from govflow.engine.workflow.sandbox import SandboxedScriptEngine

MAX_FILES = 200
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
MANIFEST_FILE = "pack.yaml"
#: the files at a pack's root; everything else of a pack lives in PACK_FOLDERS
ROOT_FILES = (MANIFEST_FILE, "catalog.yaml", "boundaries.geojson", "gazetteer.yaml", SCENARIO_FILE)
PACK_FOLDERS = ("processes", "decisions", "policies", "dispatch")
#: the files of dispatch/: the trained dispatch model and the examples it was trained on (plugin data)
DISPATCH_FILES = ("dispatch/model.json", "dispatch/examples.yaml")
#: the files of policies/ (demo-principals.yaml: `govflow serve --demo`, validated with the pack)
DEMO_PRINCIPALS = "policies/demo-principals.yaml"
POLICY_FILES = (
    "policies/model.conf",
    "policies/policy.csv",
    "policies/responsibility.yaml",
    "policies/demo-principals.yaml",
)
#: suffixes of pack content: such a file at a folder pack's root is refused as misplaced
_ALLOWED_SUFFIXES = {".yaml", ".yml", ".bpmn", ".dmn", ".csv", ".conf", ".geojson", ".json", ".xml"}
_LAYOUT = (
    "a pack has pack.yaml, catalog.yaml, boundaries.geojson, gazetteer.yaml and simulation.yaml at its root, diagrams (*.bpmn), decision "
    "tables (*.dmn) and forms.yaml in processes/, decision tables (*.dmn) in decisions/, and model.conf, "
    "policy.csv, responsibility.yaml, demo-principals.yaml in policies/, and model.json and examples.yaml in dispatch/"
)


def _misplaced(name: str) -> str:
    return f"not a file govflow reads at the pack's root, so it is refused rather than ignored: {_LAYOUT}"


def member_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file of a pack, or None when govflow reads it.

    Every file of a pack is used or refused, never silently ignored: an unread
    file (a DMN table in the wrong folder, a policy file with another name)
    would look like configuration that takes effect and does not.
    """
    parts = name.split("/")
    if len(parts) == 1:
        return None if name in ROOT_FILES else _misplaced(name)
    if any(part.startswith(".") for part in parts):
        return f"hidden file refused (govflow would not read it): {_LAYOUT}"
    top = parts[0]
    if top == "processes":
        if name.endswith((".bpmn", ".dmn")) or name == "processes/forms.yaml":
            return None
        return f"processes/ holds diagrams (*.bpmn), decision tables (*.dmn) and forms.yaml; govflow does not read this file: {_LAYOUT}"
    if top == "decisions":
        if name.endswith(".dmn"):
            return None
        return f"decisions/ holds decision tables (*.dmn) only; govflow does not read this file: {_LAYOUT}"
    if top == "policies":
        if name in POLICY_FILES:
            return None
        return f"policies/ holds model.conf, policy.csv, responsibility.yaml and demo-principals.yaml; govflow does not read this file: {_LAYOUT}"
    if top == "dispatch":
        if name in DISPATCH_FILES:
            return None
        return f"dispatch/ holds model.json and examples.yaml; govflow does not read this file: {_LAYOUT}"
    return f"not part of a pack: {_LAYOUT}"


def member_issues(names: Iterable[str]) -> list[PackIssue]:
    """One issue per file of ``names`` that a pack may not hold (see :func:`member_problem`)."""
    return [PackIssue(name, why) for name in sorted(names) if (why := member_problem(name)) is not None]


@dataclass(frozen=True)
class Manifest:
    """``pack.yaml``: what the pack is, for which district, and which plugins it enables.

    ``plugins`` names the plugins the pack enables (district plugins act only for
    packs that list them); built-in plugins act for every pack unless listed in
    ``disabled_plugins``. ``composition`` records the base of an extended pack.
    """

    name: str
    version: str
    district: str
    process: str
    description: str = ""
    plugins: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    disabled_plugins: tuple[str, ...] = ()
    composition: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LoadedPack:
    """A validated, compiled pack version (immutable once built)."""

    manifest: Manifest
    catalog: Catalog
    territory: Territory
    forms: dict[str, Form]
    diagrams: CompiledDiagrams
    runtime: Runtime
    policy_model: str
    policy_rows: list[list[str]]
    files: dict[str, bytes]
    content_hash: str
    extra: dict[str, Any] = field(default_factory=dict)
    responsibility: ResponsibilityList | None = None
    decisions: Decisions | None = None
    gazetteer: Gazetteer | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.manifest.name, self.manifest.version)

    def new_authorizer(self, grants: Iterable[Any] = ()) -> Authorizer:
        return Authorizer(self.policy_model, self.policy_rows, grants, responsible=self._responsible)

    def _responsible(self, matter: str, domain: str, unit: str) -> bool:
        """For Casbin's call-out matcher: does the responsibility list name ``unit`` for ``matter``?"""
        found = self.responsibility.lookup(matter) if self.responsibility is not None and matter else None
        return found is not None and (unit == found.main or unit in found.cooperating)

    def archive(self) -> bytes:
        return files_to_zip(self.files)


def read_folder(root: Path) -> dict[str, bytes]:
    """The pack files under ``root`` (only the pack's own entries, never the whole tree).

    The pack is the files of :data:`ROOT_FILES` at the root and everything under ``processes/``, ``decisions/`` and ``policies/``
    (see :func:`member_issues` for what those may hold). Other entries at the
    root are not part of the pack (a pack folder may be a repository: the
    reference pack is), except files with a pack suffix, which are refused as
    misplaced. Symbolic links and special files (FIFOs, sockets, devices) are
    refused wherever they are in the pack: nothing outside the folder is read.
    Each file is opened without following links and read up to the size limit.
    """
    root = Path(root)
    manifest = root / MANIFEST_FILE
    if not manifest.is_file() or manifest.is_symlink():
        raise PackError(
            "not a process pack: pack.yaml is missing"
            if not manifest.is_symlink()
            else "pack.yaml is a symbolic link: a pack's files must be regular files inside its folder",
            issues=[PackIssue("pack.yaml", "file not found" if not manifest.is_symlink() else "symbolic link refused")],
            path=str(root),
        )
    issues: list[PackIssue] = []
    found: list[tuple[str, str]] = []  # (relative name, absolute path) of regular files
    budget = [MAX_FILES + 1]

    def visit(entry: os.DirEntry[str], name: str) -> None:
        if budget[0] <= 0:
            return
        if entry.is_symlink():
            issues.append(PackIssue(name, _SYMLINK))
        elif entry.is_dir(follow_symlinks=False):
            with os.scandir(entry.path) as children:
                for child in sorted(children, key=lambda c: c.name):
                    visit(child, f"{name}/{child.name}")
        elif entry.is_file(follow_symlinks=False):
            budget[0] -= 1
            found.append((name, entry.path))
        else:
            issues.append(PackIssue(name, _SPECIAL))

    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in PACK_FOLDERS or entry.name in ROOT_FILES:
                visit(entry, entry.name)
            elif not entry.name.startswith(".") and entry.name.endswith(tuple(_ALLOWED_SUFFIXES)):
                issues.append(PackIssue(entry.name, _misplaced(entry.name)))
    if budget[0] <= 0:
        raise PackError(
            f"the pack folder holds more than {MAX_FILES} files", issues=[PackIssue("(pack)", "too many files")]
        )
    files: dict[str, bytes] = {}
    for name, path in found:
        data = _read_regular_file(path, name, issues)
        if data is not None:
            files[name] = data
    if issues:
        raise PackError(f"the pack folder was refused: {len(issues)} issue(s)", issues=issues, path=str(root))
    _check_bounds(files)
    return files


_SYMLINK = "symbolic link refused: a pack's files must be regular files inside its folder"
_SPECIAL = "not a regular file (a FIFO, socket or device): refused"


def _read_regular_file(path: str, name: str, issues: list[PackIssue]) -> bytes | None:
    """Read a regular file without following a link, at most the per-file limit (+1 byte to notice more)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        issues.append(PackIssue(name, _SYMLINK if os.path.islink(path) else f"cannot be read: {exc.strerror}"))
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced between listing and opening
            issues.append(PackIssue(name, _SPECIAL))
            return None
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        issues.append(PackIssue(name, f"file larger than {MAX_FILE_BYTES} bytes"))
        return None
    return data


def read_zip(content: bytes) -> dict[str, bytes]:
    """Pack files from a zip upload: bounded in size and count, no path escapes."""
    if len(content) > MAX_TOTAL_BYTES:
        raise PackError(f"archive larger than {MAX_TOTAL_BYTES} bytes", issues=[PackIssue("(archive)", "too large")])
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise PackError("not a zip archive", issues=[PackIssue("(archive)", "not a zip archive")]) from None
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_FILES:
        raise PackError(
            f"archive holds {len(infos)} files; at most {MAX_FILES}", issues=[PackIssue("(archive)", "too many files")]
        )
    issues: list[PackIssue] = []
    files: dict[str, bytes] = {}
    total = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name.startswith("/") or ":" in pure.parts[0]:
            issues.append(PackIssue(name, "path escapes the pack folder"))
            continue
        mode = info.external_attr >> 16  # the Unix mode, when the archive was made on Unix
        if stat.S_ISLNK(mode):
            issues.append(PackIssue(name, _SYMLINK))
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            issues.append(PackIssue(name, _SPECIAL))
            continue
        if str(pure) in files:
            issues.append(PackIssue(name, "the archive holds this file twice"))
            continue
        if info.file_size > MAX_FILE_BYTES:
            issues.append(PackIssue(name, f"file larger than {MAX_FILE_BYTES} bytes"))
            continue
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            issues.append(PackIssue(name, f"archive expands beyond {MAX_TOTAL_BYTES} bytes"))
            break
        with archive.open(info) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            issues.append(PackIssue(name, f"file larger than {MAX_FILE_BYTES} bytes"))
            continue
        files[str(pure)] = data
    if issues:
        raise PackError("the archive was refused", issues=issues)
    # a zip of the folder itself ("district-pack/pack.yaml") is accepted too
    if "pack.yaml" not in files:
        tops = {PurePosixPath(n).parts[0] for n in files}
        if len(tops) == 1 and f"{next(iter(tops))}/pack.yaml" in files:
            prefix = next(iter(tops)) + "/"
            files = {n[len(prefix) :]: b for n, b in files.items()}
    _check_bounds(files)
    return files


def files_to_zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _check_bounds(files: Mapping[str, bytes]) -> None:
    issues = [
        PackIssue(n, f"file larger than {MAX_FILE_BYTES} bytes") for n, b in files.items() if len(b) > MAX_FILE_BYTES
    ]
    if len(files) > MAX_FILES:
        issues.append(PackIssue("(pack)", f"{len(files)} files; at most {MAX_FILES}"))
    if sum(len(b) for b in files.values()) > MAX_TOTAL_BYTES:
        issues.append(PackIssue("(pack)", f"more than {MAX_TOTAL_BYTES} bytes in all"))
    if issues:
        raise PackError("the pack is too large", issues=issues)


def _yaml(files: Mapping[str, bytes], name: str, issues: list[PackIssue], *, required: bool = True) -> Any:
    if name not in files:
        if required:
            issues.append(PackIssue(name, "file not found"))
        return None
    try:
        return load_yaml(files[name].decode("utf-8"))
    except UnicodeDecodeError:
        issues.append(PackIssue(name, "not UTF-8 text"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.append(
            PackIssue(
                name, f"invalid YAML: {getattr(exc, 'problem', None) or exc}", line=(mark.line + 1) if mark else None
            )
        )
    return None


def _demo_principal_issues(content: bytes, catalog: Catalog) -> list[PackIssue]:
    """``policies/demo-principals.yaml`` (loaded by ``govflow serve --demo``) checked against the pack's catalog."""
    try:
        parse_principals(content.decode("utf-8"), [catalog], filename=DEMO_PRINCIPALS)
    except InvalidInput as exc:
        return [
            PackIssue(DEMO_PRINCIPALS, f"{_loc(err.get('loc', ()))}: {err.get('msg', '')}") for err in exc.errors
        ] or [PackIssue(DEMO_PRINCIPALS, exc.message)]
    return []


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _manifest(data: Any, issues: list[PackIssue]) -> Manifest | None:
    if not isinstance(data, dict):
        if data is not None:
            issues.append(PackIssue("pack.yaml", "must be a mapping"))
        return None
    problems = []
    name, version = str(data.get("name", "")), str(data.get("version", ""))
    if not _NAME.match(name):
        problems.append("name must be lower-case ascii (letters, digits, - and _)")
    if not _VERSION.match(version):
        problems.append("version must be a short version string such as 1.2.0")
    for key in ("district", "process"):
        if not data.get(key):
            problems.append(f"{key} is required")
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        problems.append("plugins must be a list of plugin names")
    disabled = data.get("disabled_plugins") or []
    if not isinstance(disabled, list) or not all(isinstance(p, str) for p in disabled):
        problems.append("disabled_plugins must be a list of plugin names")
    elif isinstance(plugins, list) and set(plugins) & set(disabled):
        problems.append(f"plugins {sorted(set(plugins) & set(disabled))} are both enabled and disabled")
    composition = data.get("composition") or {}
    if not isinstance(composition, dict):
        problems.append("composition must be a mapping (it is written by govflow when a pack extends another)")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        problems.append("settings must be a mapping")
    unknown = set(data) - {
        "name",
        "version",
        "district",
        "process",
        "description",
        "plugins",
        "disabled_plugins",
        "settings",
        "extends",
        "composition",
    }
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    issues += [PackIssue("pack.yaml", p) for p in problems]
    if problems:
        return None
    return Manifest(
        name,
        version,
        str(data["district"]),
        str(data["process"]),
        str(data.get("description", "")),
        tuple(plugins),
        settings,
        tuple(disabled),
        composition,
    )


def _line_of_key(content: bytes, key: str) -> int | None:
    for lineno, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return lineno
    return None


def resolve_extends(files: Mapping[str, bytes], resolve_base: BaseResolver | None) -> dict[str, bytes]:
    """The effective files of a pack: composed over its base when ``pack.yaml`` says ``extends``.

    Raises :class:`PackError` when the base cannot be found or the files do not merge.
    """
    return _resolve_extends(files, resolve_base)[0]


def _resolve_extends(
    files: Mapping[str, bytes], resolve_base: BaseResolver | None
) -> tuple[dict[str, bytes], SourceMap | None]:
    """:func:`resolve_extends`, and where the lines of the effective files came from (None: not composed)."""
    files = dict(files)
    if "pack.yaml" not in files:
        return files, None
    issues: list[PackIssue] = []
    raw = _yaml(files, "pack.yaml", issues)
    if not isinstance(raw, dict) or raw.get("extends") is None:
        return files, None
    line = _line_of_key(files["pack.yaml"], "extends")
    ref = parse_extends(raw["extends"])
    if ref is None:
        raise PackError(
            "pack.yaml: extends is malformed",
            issues=[
                PackIssue(
                    "pack.yaml", "extends must be a pack name, name@version, or {pack: name, version: x}", line=line
                )
            ],
        )
    if resolve_base is None:
        raise PackError(
            f"pack.yaml extends {ref}, but no deployed packs are at hand to resolve it",
            issues=[PackIssue("pack.yaml", f"extends {ref}: no base pack can be resolved here", line=line)],
        )
    try:
        base = resolve_base(ref.name, ref.version)
    except PackError as exc:
        raise PackError(
            f"the base pack {ref} is invalid",
            issues=[
                PackIssue("pack.yaml", f"extends {ref}: the base does not load: {exc.message}", line=line),
                *(dataclasses.replace(i, pack=i.pack or str(ref)) for i in exc.issues),
            ],
        ) from None
    except LookupError as exc:
        raise PackError(
            f"the base pack {ref} is not available",
            issues=[PackIssue("pack.yaml", f"extends {ref}: {exc.args[0] if exc.args else 'not found'}", line=line)],
        ) from None
    sources = SourceMap(str(ref))
    effective, issues = compose(files, base, ref, content_hash(base), sources)
    if issues:
        raise PackError(
            f"the pack does not merge with its base {ref}: {len(issues)} issue(s)",
            issues=[with_path_line(i, files) for i in issues],
        )
    return effective, sources


def _duplicate_setting_issues(value: Any) -> list[PackIssue]:
    """settings.dispatch.duplicates: absent, false, or {window_hours, radius_m} as positive numbers."""
    if value is None or value is False:
        return []
    if not isinstance(value, dict):
        return [PackIssue("pack.yaml", "settings.dispatch.duplicates must be false or a mapping")]
    out = []
    for key, v in value.items():
        if key not in ("window_hours", "radius_m"):
            out.append(PackIssue("pack.yaml", f"settings.dispatch.duplicates.{key}: unknown (window_hours, radius_m)"))
        elif isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1e6:
            out.append(PackIssue("pack.yaml", f"settings.dispatch.duplicates.{key} must be a positive number"))
    return out


def load_pack(
    files: Mapping[str, bytes],
    **options: Any,
) -> LoadedPack:
    """Validate and compile a pack (see :func:`_load_pack` for the options); raise :class:`PackError`.

    Whatever a pack holds, the answer is the pack or a :class:`PackError`: an
    exception no check foresaw (a hostile file of an unexpected shape) is
    reported as an issue of the pack, never as a crash of the caller (a 500).
    """
    try:
        return _load_pack(files, **options)
    except GovflowError:
        raise
    except Exception as exc:
        raise PackError(
            "the pack could not be validated",
            issues=[PackIssue("(pack)", f"validation stopped on an unexpected {type(exc).__name__}: {exc}"[:500])],
        ) from exc


def _load_pack(
    files: Mapping[str, bytes],
    *,
    services: Mapping[str, Callable[..., Any]] | Callable[[Manifest], Mapping[str, Callable[..., Any]]] | None = None,
    available_plugins: Iterable[str] | None = None,
    resolve_base: BaseResolver | None = None,
    compile_cache: Cache[str, CompiledDiagrams] | None = None,
    calendar_factory: Callable[[Manifest], WorkCalendar | None] | None = None,
    reuse: Sequence[LoadedPack] = (),
) -> LoadedPack:
    """Validate and compile a pack; raise :class:`PackError` listing every issue.

    ``services`` are the functions BPMN service tasks may call by name, or a
    callable giving them for the pack's manifest (the functions of the plugins
    the pack enables). ``resolve_base`` finds the base of a pack that
    ``extends`` another (see :mod:`govflow.engine.packs.compose`).
    ``compile_cache`` (the application's) shares compiled diagrams between
    versions with the same diagrams.

    ``calendar_factory(manifest)`` supplies the pack's working-day calendar
    (the ``govflow_calendar`` hook of the plugins the manifest selects);
    Monday–Friday without one.

    ``reuse``: compiled packs (the base of an extending pack, filled in by the
    resolver while ``extends`` is resolved) whose parsed catalog, territory,
    gazetteer, responsibility list, forms and policies are taken over where the
    files they were parsed from are byte-identical: a draft that changes one
    diagram is validated without parsing the rest again. Those packs were
    validated, so what they parsed carries no issue.
    """
    files, sources = _resolve_extends(files, resolve_base)
    try:
        return _compile(files, services, available_plugins, compile_cache, calendar_factory, reuse)
    except PackError as exc:  # point every issue at the file and line the user wrote
        cache: dict[str, Located] = {}
        exc.issues = (
            sources.locate_all(exc.issues, files)
            if sources is not None
            else [with_path_line(i, files, cache) for i in exc.issues]
        )
        raise


def _compile(
    files: dict[str, bytes],
    services: Mapping[str, Callable[..., Any]] | Callable[[Manifest], Mapping[str, Callable[..., Any]]] | None,
    available_plugins: Iterable[str] | None,
    compile_cache: Cache[str, CompiledDiagrams] | None,
    calendar_factory: Callable[[Manifest], WorkCalendar | None] | None,
    reuse: Sequence[LoadedPack],
) -> LoadedPack:
    """Validate and compile the effective files of a pack (see :func:`_load_pack`)."""

    def donor(*names: str) -> LoadedPack | None:
        """A reusable pack whose files ``names`` are all there and byte-identical to these."""
        if not all(n in files for n in names):
            return None
        return next((p for p in reuse if all(p.files.get(n) == files[n] for n in names)), None)

    issues: list[PackIssue] = member_issues(files)
    manifest = _manifest(_yaml(files, "pack.yaml", issues), issues)
    catalog: Catalog | None = None
    cat_issues: list[PackIssue] = []
    if same := donor("catalog.yaml"):
        catalog = same.catalog
    elif (raw_catalog := _yaml(files, "catalog.yaml", issues)) is not None:
        catalog, cat_issues = parse_catalog(raw_catalog)
        issues += cat_issues
    territory = None
    if catalog is not None:
        if same := donor("catalog.yaml", "boundaries.geojson"):
            territory = same.territory
        elif "boundaries.geojson" in files:
            territory, geo_issues = parse_boundaries(files["boundaries.geojson"], catalog)
            issues += geo_issues
        else:
            issues.append(PackIssue("boundaries.geojson", "file not found"))
    if manifest and catalog and manifest.district != catalog.district:
        issues.append(
            PackIssue("pack.yaml", f"district {manifest.district!r} differs from catalog.yaml's {catalog.district!r}")
        )
    if manifest and available_plugins is not None:
        known = set(available_plugins)
        located = locate_yaml(files["pack.yaml"].decode("utf-8", "replace"))
        for key, names in (("plugins", manifest.plugins), ("disabled_plugins", manifest.disabled_plugins)):
            for plugin in names:
                if plugin not in known:
                    issues.append(
                        PackIssue(
                            "pack.yaml",
                            f"plugin {plugin!r} is not installed (installed: {', '.join(sorted(known)) or 'none'})",
                            line=line_of_path(located, (key, ("=", plugin))),
                        )
                    )
    gazetteer = None
    if catalog is not None and (same := donor("catalog.yaml", "gazetteer.yaml")):
        gazetteer = same.gazetteer
    elif catalog is not None and "gazetteer.yaml" in files:
        raw_gazetteer = _yaml(files, "gazetteer.yaml", issues)
        if raw_gazetteer is not None:
            gazetteer, gaz_issues = parse_gazetteer(raw_gazetteer, catalog)
            issues += gaz_issues
    responsibility = None
    if catalog is not None:
        if same := donor("catalog.yaml", "policies/responsibility.yaml"):
            responsibility = same.responsibility
        elif "policies/responsibility.yaml" in files:
            responsibility, resp_issues = parse_responsibility(files["policies/responsibility.yaml"], catalog)
            issues += resp_issues
        else:
            issues.append(
                PackIssue("policies/responsibility.yaml", "file not found (every matter needs a responsibility entry)")
            )

    if (
        DEMO_PRINCIPALS in files
        and not donor("catalog.yaml", DEMO_PRINCIPALS)
        and _yaml(files, DEMO_PRINCIPALS, issues) is not None
        and catalog is not None
    ):
        issues += _demo_principal_issues(files[DEMO_PRINCIPALS], catalog)

    if same := donor("processes/forms.yaml"):
        forms = same.forms
    else:
        forms, form_issues = parse_forms(_yaml(files, "processes/forms.yaml", issues) or {})
        issues += form_issues

    model_text = files.get("policies/model.conf", b"").decode("utf-8", "replace")
    if not model_text:
        issues.append(PackIssue("policies/model.conf", "file not found"))
    if same := donor("policies/model.conf", "policies/policy.csv"):
        rows = same.policy_rows
    else:
        rows, row_issues = parse_policy_rows(files.get("policies/policy.csv", b"").decode("utf-8", "replace"))
        issues += row_issues
        if model_text and not row_issues:
            issues += Authorizer.check_model(model_text, rows)

    diagram_files = {
        n: b
        for n, b in files.items()
        if n.startswith(("processes/", "decisions/")) and n.endswith((".bpmn", ".dmn")) and member_problem(n) is None
    }
    if not any(n.endswith(".bpmn") for n in diagram_files):
        issues.append(PackIssue("processes/", "no .bpmn diagram found"))
    diagrams, diagram_issues = compile_diagrams(
        diagram_files, forms=forms, stages=[s.value for s in Stage], cache=compile_cache
    )
    issues += diagram_issues
    if diagrams is not None and manifest is not None and manifest.process not in diagrams.specs:
        issues.append(
            PackIssue(
                "pack.yaml",
                f"process {manifest.process!r} is not defined by any diagram (found: {', '.join(sorted(diagrams.specs))})",
            )
        )
    elif diagrams is not None and manifest is not None:
        issues += diagrams.role_issues.get(manifest.process, [])

    if SCENARIO_FILE in files and catalog is not None and not donor("catalog.yaml", SCENARIO_FILE):
        # the policy simulation's scenario (govflow simulate): its units, streets and matters must exist;
        # its steps are checked when it is simulated, so a version that renames a step still deploys
        issues += scenario_issues(files[SCENARIO_FILE], catalog)

    if callable(services):
        services = services(manifest) if manifest is not None else {}
    decisions = None
    if diagrams is not None:
        decisions, decision_issues = compile_decisions(diagram_files, SandboxedScriptEngine(services))
        issues += decision_issues
    dispatch_settings = manifest.settings.get("dispatch") if manifest else None
    if dispatch_settings is not None and not isinstance(dispatch_settings, dict):
        issues.append(PackIssue("pack.yaml", "settings.dispatch must be a mapping"))
        dispatch_settings = None
    owner_decision = (dispatch_settings or {}).get("owner_decision")
    if owner_decision and decisions is not None and owner_decision not in decisions:
        issues.append(
            PackIssue(
                "pack.yaml",
                f"settings.dispatch.owner_decision names decision {owner_decision!r}, which no processes/*.dmn or decisions/*.dmn defines (found: {', '.join(decisions.ids) or 'none'})",
                element=str(owner_decision),
            )
        )
    issues += _duplicate_setting_issues((dispatch_settings or {}).get("duplicates"))

    deadlines = None
    if manifest is not None:
        calendar = (calendar_factory(manifest) if calendar_factory else None) or WeekdayCalendar()
        deadlines, deadline_issues = parse_deadline_settings(manifest.settings, calendar)
        issues += deadline_issues

    if issues or manifest is None or catalog is None or territory is None or diagrams is None:
        raise PackError(
            f"pack {manifest.name + ' ' + manifest.version if manifest else ''} is invalid: {len(issues)} issue(s)".replace(
                "  ", " "
            ),
            issues=issues,
        )
    return LoadedPack(
        manifest=manifest,
        catalog=catalog,
        territory=territory,
        forms=forms,
        diagrams=diagrams,
        runtime=Runtime(diagrams, services, deadlines),
        policy_model=model_text,
        policy_rows=rows,
        files=files,
        content_hash=content_hash(files),
        responsibility=responsibility,
        decisions=decisions,
        gazetteer=gazetteer,
    )

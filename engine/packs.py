"""Process packs: read, validate and compile a district's pack.

A pack is a set of files (a folder or a zip of one)::

    pack.yaml            name, version, district, process, plugins, settings
    catalog.yaml         district, units, matters           (govflow.engine.catalog)
    boundaries.geojson   street territories
    processes/*.bpmn     diagrams; processes/*.dmn decisions; processes/forms.yaml
    policies/model.conf  the Casbin model; policies/policy.csv its p rows
    policies/*.yaml      responsibility list, demo principals

:func:`load_pack` validates *everything* and either returns an immutable
:class:`LoadedPack` or raises :class:`~govflow.engine.errors.PackError` listing
every issue (file, line, element, what is wrong). A loaded pack is keyed by its
content hash; the spec objects inside are shared by every case of that version.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .authz import Authorizer, parse_policy_rows
from .bpmn import CompiledDiagrams, compile_diagrams
from .catalog import Catalog, Territory, parse_boundaries, parse_catalog
from .errors import PackError, PackIssue
from .forms import Form, parse_forms
from .lifecycle import Stage
from .runtime import Runtime

MAX_FILES = 200
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
_PACK_GLOBS = ("pack.yaml", "catalog.yaml", "boundaries.geojson", "processes/**/*", "policies/**/*")
_ALLOWED_SUFFIXES = {".yaml", ".yml", ".bpmn", ".dmn", ".csv", ".conf", ".geojson", ".json"}


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    district: str
    process: str
    description: str = ""
    plugins: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


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

    @property
    def key(self) -> tuple[str, str]:
        return (self.manifest.name, self.manifest.version)

    def new_authorizer(self, grants: Iterable[Any] = ()) -> Authorizer:
        return Authorizer(self.policy_model, self.policy_rows, grants)

    def archive(self) -> bytes:
        return files_to_zip(self.files)


def content_hash(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def read_folder(root: Path) -> dict[str, bytes]:
    """The pack files under ``root`` (only the pack's own entries, never the whole tree)."""
    root = Path(root)
    if not (root / "pack.yaml").is_file():
        raise PackError("not a process pack: pack.yaml is missing", issues=[PackIssue("pack.yaml", "file not found")], path=str(root))
    files: dict[str, bytes] = {}
    for pattern in _PACK_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path.suffix in _ALLOWED_SUFFIXES and not path.name.startswith("."):
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    _check_bounds(files)
    return files


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
        raise PackError(f"archive holds {len(infos)} files; at most {MAX_FILES}", issues=[PackIssue("(archive)", "too many files")])
    issues: list[PackIssue] = []
    files: dict[str, bytes] = {}
    total = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name.startswith("/") or ":" in pure.parts[0]:
            issues.append(PackIssue(name, "path escapes the pack folder"))
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
            files = {n[len(prefix):]: b for n, b in files.items()}
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
    issues = [PackIssue(n, f"file larger than {MAX_FILE_BYTES} bytes") for n, b in files.items() if len(b) > MAX_FILE_BYTES]
    if len(files) > MAX_FILES:
        issues.append(PackIssue("(pack)", f"{len(files)} files; at most {MAX_FILES}"))
    if issues:
        raise PackError("the pack is too large", issues=issues)


def _yaml(files: Mapping[str, bytes], name: str, issues: list[PackIssue], *, required: bool = True) -> Any:
    if name not in files:
        if required:
            issues.append(PackIssue(name, "file not found"))
        return None
    try:
        return yaml.safe_load(files[name].decode("utf-8"))
    except UnicodeDecodeError:
        issues.append(PackIssue(name, "not UTF-8 text"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.append(PackIssue(name, f"invalid YAML: {getattr(exc, 'problem', None) or exc}", line=(mark.line + 1) if mark else None))
    return None


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
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        problems.append("settings must be a mapping")
    unknown = set(data) - {"name", "version", "district", "process", "description", "plugins", "settings", "extends"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    issues += [PackIssue("pack.yaml", p) for p in problems]
    if problems:
        return None
    return Manifest(name, version, str(data["district"]), str(data["process"]), str(data.get("description", "")), tuple(plugins), settings)


def load_pack(
    files: Mapping[str, bytes],
    *,
    services: Mapping[str, Callable[..., Any]] | None = None,
    available_plugins: Iterable[str] | None = None,
) -> LoadedPack:
    """Validate and compile a pack; raise :class:`PackError` listing every issue."""
    files = dict(files)
    issues: list[PackIssue] = []
    manifest = _manifest(_yaml(files, "pack.yaml", issues), issues)
    catalog, cat_issues = (None, [])
    raw_catalog = _yaml(files, "catalog.yaml", issues)
    if raw_catalog is not None:
        catalog, cat_issues = parse_catalog(raw_catalog)
        issues += cat_issues
    territory = None
    if catalog is not None:
        if "boundaries.geojson" in files:
            territory, geo_issues = parse_boundaries(files["boundaries.geojson"], catalog)
            issues += geo_issues
        else:
            issues.append(PackIssue("boundaries.geojson", "file not found"))
    if manifest and catalog and manifest.district != catalog.district:
        issues.append(PackIssue("pack.yaml", f"district {manifest.district!r} differs from catalog.yaml's {catalog.district!r}"))
    if manifest and available_plugins is not None:
        known = set(available_plugins)
        for plugin in manifest.plugins:
            if plugin not in known:
                issues.append(PackIssue("pack.yaml", f"plugin {plugin!r} is not installed (installed: {', '.join(sorted(known)) or 'none'})"))

    forms, form_issues = parse_forms(_yaml(files, "processes/forms.yaml", issues) or {})
    issues += form_issues

    model_text = files.get("policies/model.conf", b"").decode("utf-8", "replace")
    if not model_text:
        issues.append(PackIssue("policies/model.conf", "file not found"))
    rows, row_issues = parse_policy_rows(files.get("policies/policy.csv", b"").decode("utf-8", "replace"))
    issues += row_issues
    if model_text and not row_issues:
        issues += Authorizer.check_model(model_text, rows)

    diagram_files = {n: b for n, b in files.items() if n.startswith("processes/") and n.endswith((".bpmn", ".dmn"))}
    if not any(n.endswith(".bpmn") for n in diagram_files):
        issues.append(PackIssue("processes/", "no .bpmn diagram found"))
    diagrams, diagram_issues = compile_diagrams(diagram_files, forms=forms, stages=[s.value for s in Stage])
    issues += diagram_issues
    if diagrams is not None and manifest is not None and manifest.process not in diagrams.specs:
        issues.append(PackIssue("pack.yaml", f"process {manifest.process!r} is not defined by any diagram (found: {', '.join(sorted(diagrams.specs))})"))

    if issues or manifest is None or catalog is None or territory is None or diagrams is None:
        raise PackError(f"pack {manifest.name + ' ' + manifest.version if manifest else ''} is invalid: {len(issues)} issue(s)".replace("  ", " "), issues=issues)
    return LoadedPack(
        manifest=manifest,
        catalog=catalog,
        territory=territory,
        forms=forms,
        diagrams=diagrams,
        runtime=Runtime(diagrams, services),
        policy_model=model_text,
        policy_rows=rows,
        files=files,
        content_hash=content_hash(files),
    )

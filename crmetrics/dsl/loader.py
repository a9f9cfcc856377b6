"""Read a project: the main file, its `include`d files, each checked against the DSL spec.

Returns the merged raw tree (YMaps that remember locations) and every issue found; `crmetrics.dsl.build` turns it
into the semantic model.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crmetrics.dsl.schema import validate
from crmetrics.dsl.spec import INCLUDED_FILE, PROJECT
from crmetrics.dsl.yamlfile import YMap, load_yaml
from crmetrics.errors import Issue, Location

MERGED_SECTIONS = ("entities", "metrics", "segments", "analyses", "reports")


@dataclass
class RawProject:
    """The project's YAML after includes are merged; every mapping still knows its file:line:column."""

    root: Path
    data: YMap
    files: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def _display(path: Path) -> str:
    """Paths in messages are relative to the working folder when that is shorter, as compilers print them."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _read(path: Path, env: Mapping[str, str] | None) -> tuple[YMap | None, list[Issue], str]:
    shown = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Issue("CRM120", f"no such project file: {shown} (looked for {path})")], shown
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return None, [Issue("CRM120", f"cannot read {shown}: {reason}")], shown
    data, issues = load_yaml(text, shown, env)
    if data is None and not issues:
        issues = [Issue("CRM121", "the file is empty", Location(shown, 1, 1))]
    elif data is not None and not isinstance(data, YMap):
        issues.append(Issue("CRM121", "a project file must be a mapping of keys", Location(shown, 1, 1)))
        data = None
    return data, issues, shown


def load_raw(path: str | os.PathLike, env: Mapping[str, str] | None = None, allow_outside: bool = False) -> RawProject:
    """Read the project file (or a folder's crmetrics.yml) and its includes; collect every issue instead of stopping
    at the first."""
    try:
        main = Path(path).resolve()
        if main.is_dir():  # a project's folder stands for its crmetrics.yml
            main = main / "crmetrics.yml"
    except (OSError, ValueError, TypeError) as error:  # e.g. a NUL byte in the path
        issue = Issue("CRM120", f"cannot read project file: {error}", Location(repr(path), 1, 1))
        return RawProject(Path.cwd(), _empty(repr(path)), [], [issue])
    root = main.parent
    data, issues, shown = _read(main, env)
    project = RawProject(root, data if data is not None else _empty(shown), [shown], issues)
    if data is None:
        return project
    project.issues += validate(data, PROJECT, data.loc)
    includes = data.get("include") or []
    includes = [includes] if isinstance(includes, str) else includes if isinstance(includes, list) else []
    for index, pattern in enumerate(includes):
        if isinstance(pattern, str):
            loc = data["include"].item_loc(index) if isinstance(data["include"], list) else data.value_loc("include")
            _include(project, pattern, loc, env, allow_outside)
    return project


def _empty(shown: str) -> YMap:
    empty = YMap()
    empty.loc, empty.key_locs, empty.value_locs = Location(shown, 1, 1), {}, {}
    return empty


def _include(
    project: RawProject, pattern: str, loc: Location, env: Mapping[str, str] | None, allow_outside: bool
) -> None:
    if not allow_outside and (os.path.isabs(pattern) or ".." in Path(pattern).parts):
        # refused before globbing: `/**/*.yml` would otherwise walk the whole file system first
        project.issues.append(Issue("CRM123", f"include '{pattern}' reaches outside the project folder", loc))
        return
    full = pattern if os.path.isabs(pattern) else str(project.root / pattern)
    matches = sorted(glob.glob(full, recursive=True))
    if not matches:
        project.issues.append(Issue("CRM122", f"include '{pattern}' matches no file", loc))
    for match in matches:
        target = Path(match).resolve()
        if not allow_outside and not target.is_relative_to(project.root):
            project.issues.append(Issue("CRM123", f"include '{pattern}' reaches outside the project folder", loc))
            continue
        data, issues, shown = _read(target, env)
        project.files.append(shown)
        project.issues += issues
        if data is None:
            continue
        project.issues += validate(data, INCLUDED_FILE, data.loc)
        _merge(project, data)


def _merge(project: RawProject, data: YMap) -> None:
    """Add an included file's sections; a name declared twice is an issue that names both places."""
    for section in MERGED_SECTIONS:
        incoming = data.get(section)
        if not isinstance(incoming, dict):
            continue
        target = project.data.get(section)
        if not isinstance(target, YMap):
            target = _empty(str(data.loc.file))
            project.data[section] = target
            project.data.key_locs.setdefault(section, data.key_loc(section))
            project.data.value_locs.setdefault(section, data.value_loc(section))
        for name, value in incoming.items():
            if name in target:
                first = target.key_loc(name)
                project.issues.append(
                    Issue(
                        "CRM124",
                        f"{section[:-1] if section != 'analyses' else 'analysis'} '{name}' is declared "
                        f"twice (first at {first})",
                        incoming.key_loc(name),
                        (section, name),
                    )
                )
                continue
            target[name] = value
            target.key_locs[name] = incoming.key_loc(name)
            target.value_locs[name] = incoming.value_loc(name)

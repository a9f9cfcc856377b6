"""Report templates run in Jinja's immutable sandbox: no Python internals, no imports, no files, no mutation.

Attacks are tried three ways: on the environment factory itself, through a project's own template that overrides a
built-in one, and through a report's narrative `text:` section. Each must fail with an error (a crmetrics
RenderError through the project) and never print anything from inside Python.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2 import DictLoader, FileSystemLoader
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError

import crmetrics
from crmetrics.errors import CrmetricsError, RenderError
from crmetrics.reports.sandbox import make_environment

ATTACKS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ x.__class__.__init__.__globals__ }}",
    "{{ x.__dict__ }}",
    "{{ x.__reduce_ex__(2) }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('__class__')|attr('__mro__'))[1] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ config }}",
    "{{ request }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '%s'|format(x.__class__) }}",
    "{{ x.rows.append(1) }}",
    "{{ x.things.clear() }}",
    "{{ x.obj.method.__func__ }}",
    "{{ x.obj.method.__self__.__class__ }}",
    "{% set _ = x.update({'a': 1}) %}{{ x }}",
    "{{ [].append(1) }}",
    "{{ {}.setdefault('a', 1) }}",
    "{{ x.func.__code__ }}",
    "{{ x.func.__globals__ }}",
    "{% import 'os' as os %}{{ os }}",
    "{% from 'os' import system %}{{ system('id') }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% extends '/etc/hostname' %}",
    "{{ undefined_variable }}",
    "{{ x.not_there }}",
    "{{ range(10**9)|list|length }}",
]

# what a leak of Python internals would print
LEAKS = ("<class", "built-in", "function", "module", "os.", "subclasses", "globals", "root:", "uid=")


class Secret:
    password = "hunter2"

    def method(self) -> str:
        return self.password


def _data() -> dict:
    return {"x": {"rows": [1, 2], "things": {"a": 1}, "func": len, "obj": Secret()}}


@pytest.mark.parametrize("source", ATTACKS)
def test_factory_environment_refuses(source: str) -> None:
    env = make_environment(DictLoader({"t.html": source, "t.md": source}))
    for name in ("t.html", "t.md"):
        with pytest.raises((SecurityError, UndefinedError, TemplateNotFound, jinja2.TemplateError, OverflowError)):
            output = env.get_template(name).render(**_data())
            assert not any(leak in output for leak in LEAKS), output  # a render that "succeeds" leaks nothing
            raise SecurityError(f"rendered without error: {output!r}")


def test_range_is_bounded() -> None:
    env = make_environment(None)
    with pytest.raises(OverflowError):
        env.from_string("{{ range(10**9)|list|length }}").render()


def test_objects_given_to_templates_expose_no_methods_that_mutate_or_leak() -> None:
    env = make_environment(None)
    data = _data()
    with pytest.raises(SecurityError):
        env.from_string("{{ x.rows.append(3) }}").render(**data)
    assert data["x"]["rows"] == [1, 2]
    # plain attributes of plain data stay readable: that is what templates are for
    assert env.from_string("{{ x.rows|length }} {{ x.things.a }}").render(**data) == "2 1"


def test_html_is_autoescaped_and_markdown_is_not() -> None:
    env = make_environment(DictLoader({"t.html": "{{ name }}", "t.html.j2": "{{ name }}", "t.md": "{{ name }}"}))
    name = "<script>alert('x')</script>"
    assert env.get_template("t.html").render(name=name) == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert env.get_template("t.html.j2").render(name=name).startswith("&lt;script&gt;")
    assert env.get_template("t.md").render(name=name) == name


def test_strict_undefined() -> None:
    with pytest.raises(UndefinedError):
        make_environment(None).from_string("{{ missing }}").render()


def test_file_loader_stays_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    folder = tmp_path / "templates"
    folder.mkdir()
    env = make_environment(FileSystemLoader(str(folder)))
    for name in ("../secret.txt", "/etc/passwd", str(tmp_path / "secret.txt"), "..\\secret.txt"):
        with pytest.raises(TemplateNotFound):
            env.get_template(name)


# --- through a project -------------------------------------------------------------------------------------------

PROJECT = """
version: 1
name: r
entities:
  orders:
    table: orders
    key: order_id
    measures: {revenue: {agg: sum, expr: amount}}
metrics:
  revenue: {measure: orders.revenue}
reports:
  r:
    title: "A <b>report</b>"
    sections:
      - type: text
        title: Summary
        metrics: [revenue]
        text: "TEXT"
"""


def _project(folder: Path, text: str = "Revenue {{ metrics.revenue }}") -> crmetrics.Project:
    yaml_text = PROJECT.replace('"TEXT"', '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    (folder / "crmetrics.yml").write_text(yaml_text, encoding="utf-8")
    con = folder / "crm.duckdb"
    import duckdb

    db = duckdb.connect(str(con))
    db.execute("CREATE TABLE IF NOT EXISTS orders AS SELECT 1 AS order_id, 10 AS amount")
    db.close()
    text_with_connection = yaml_text.replace("name: r\n", "name: r\nconnection: duckdb:///crm.duckdb\n")
    (folder / "crmetrics.yml").write_text(text_with_connection, encoding="utf-8")
    return crmetrics.load(folder / "crmetrics.yml")


def test_a_harmless_narrative_renders(tmp_path: Path) -> None:
    from crmetrics.reports import build_document

    document = build_document(_project(tmp_path), "r")
    assert "Revenue 10" in str(document["sections"])


@pytest.mark.parametrize("attack", [a for a in ATTACKS if "range(10**9)" not in a])
def test_narrative_text_is_sandboxed(tmp_path: Path, attack: str) -> None:
    from crmetrics.reports import build_document

    project = _project(tmp_path, attack)
    with pytest.raises(CrmetricsError) as error:
        document = build_document(project, "r")
        assert not any(leak in str(document["sections"]) for leak in LEAKS)
        raise RenderError(f"rendered: {document['sections']}")
    assert error.value.code.startswith("CRM")


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% include '../crmetrics.yml' %}",
        "{{ document.__class__ }}",
    ],
)
def test_project_templates_are_sandboxed(tmp_path: Path, attack: str) -> None:
    from crmetrics.reports import render_report

    project = _project(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text(attack, encoding="utf-8")
    with pytest.raises(RenderError) as error:
        render_report(project, "r", format="md", out=tmp_path / "out.md")
    assert error.value.code == "CRM800" and "format 'md'" in str(error.value)
    assert not (tmp_path / "out.md").exists() or not any(
        leak in (tmp_path / "out.md").read_text(encoding="utf-8") for leak in LEAKS
    )


def test_html_reports_escape_data(tmp_path: Path) -> None:
    from crmetrics.reports import render_report

    project = _project(tmp_path, "<script>alert(1)</script>")
    path = render_report(project, "r", format="html", out=tmp_path / "out.html")
    html = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "A <b>report</b>" not in html

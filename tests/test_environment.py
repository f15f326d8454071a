"""requirements.txt (pip, CI) and environment.yml (conda, Binder) pin exactly the same packages."""

import re

from course.lessons import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#;]+)$")


def pins(lines):
    """{package: version} for every `name==version` line; any other requirement line is an error."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("--"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        found[match.group(1).lower()] = match.group(2)
    return found


def environment_yml_pip_lines():
    text = (REPO / "environment.yml").read_text()
    section = text.split("- pip:", 1)[1]
    return [re.sub(r"^\s*-\s*", "", line) for line in section.splitlines() if line.strip().startswith("-")]


def test_requirements_are_exact_pins():
    assert pins((REPO / "requirements.txt").read_text().splitlines())


def test_environment_yml_agrees_with_requirements():
    requirements = pins((REPO / "requirements.txt").read_text().splitlines())
    environment = pins(environment_yml_pip_lines())
    assert environment == requirements


def test_environment_yml_uses_python_311():
    assert re.search(r"^\s*-\s*python=3\.11\s*$", (REPO / "environment.yml").read_text(), re.M)


def test_the_course_environment_leaves_out_the_slow_iri_checker():
    """`make install` removes rfc3987-syntax (see the Makefile): jsonschema then imports in a fraction of a second
    instead of about 1.5 s, in every process that imports nbformat, and still validates notebooks."""
    import importlib.util

    import jsonschema
    import nbformat

    assert importlib.util.find_spec("rfc3987_syntax") is None, "rfc3987-syntax is installed: run `make install`"
    assert "iri" not in jsonschema.Draft7Validator.FORMAT_CHECKER.checkers
    nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]))

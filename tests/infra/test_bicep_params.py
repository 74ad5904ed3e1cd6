"""Every value a template passes to a module is one the module accepts.

ARM checks a module's parameters only at deployment: `main.bicep` allowing a value (say the Verkada region
`gov`) that `modules/app.bicep` does not allow parses, lints and scans cleanly, and fails the deployment
of exactly the customers who chose it. Here each module call is checked offline, parameter by parameter:

- the module declares the parameter, and every parameter it requires is passed;
- the type of what is passed is the parameter's type (a template parameter, a literal, or a string variable);
- when a template parameter flows straight in (`name: someParam`), every value it allows is one the module
  allows: its `@allowed` list is a subset of the module's, its `@minValue`/`@maxValue` and
  `@minLength`/`@maxLength` lie inside the module's, and a `@secure()` value stays secure;
- a default — the template parameter's, or a literal passed — satisfies the module's constraints.

pycep writes an identifier and a string literal alike (`location` and `'location'` both become "location"),
so what each argument *is* is read from the template's text (one `name: expression` line each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep_model import BICEP_DIR, bicep_files, config, parse

IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
STRING_LITERAL = re.compile(r"^'(?:[^'\\$]|\\.|\$(?!\{))*'$")  # a plain string: no ${...} interpolation
MODULE_LINE = re.compile(r"^module\s+(\w+)\s+'([^']+)'")


@dataclass(frozen=True)
class Argument:
    """One `name: expression` of a module call's params, as written."""

    module: str
    name: str
    text: str


def _arguments(path: Path) -> dict[str, dict[str, Argument]]:
    """module symbol → parameter → its expression's text (first line), from the template's source."""
    calls: dict[str, dict[str, Argument]] = {}
    current: str | None = None
    in_params = False
    indent = ""
    for line in path.read_text().splitlines():
        header = MODULE_LINE.match(line)
        if header:
            current, in_params = header[1], False
            calls[current] = {}
            continue
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        params = re.match(r"^(\s+)params:\s*\{\s*$", line)
        if params:
            in_params, indent = True, params[1] + "  "
            continue
        if in_params:
            if re.match(rf"^{indent[:-2]}\}}", line):
                in_params = False
                continue
            entry = re.match(rf"^{indent}(\w+):\s*(.*?)\s*$", line)
            if entry:
                calls[current][entry[1]] = Argument(current, entry[1], entry[2])
    return calls


def _decorator(spec: dict[str, Any], kind: str) -> Any:
    return next((d["argument"] for d in spec.get("decorators", []) if d["type"] == kind), None)


def _secure(spec: dict[str, Any]) -> bool:
    return any(d["type"] == "secure" for d in spec.get("decorators", []))


def _literal(text: str) -> tuple[str, Any] | None:
    """(type, value) of a literal argument, or None when it is an expression."""
    if STRING_LITERAL.match(text):
        return "string", text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return "int", int(text)
    if text in ("true", "false"):
        return "bool", text == "true"
    return None


def _violations(value: Any, spec: dict[str, Any]) -> list[str]:
    """What is wrong with passing `value` to a parameter declared as `spec`."""
    problems = []
    allowed = _decorator(spec, "allowed")
    if allowed is not None and value not in allowed:
        problems.append(f"{value!r} is not in its @allowed {allowed}")
    low, high = _decorator(spec, "min_value"), _decorator(spec, "max_value")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and ((low is not None and value < low) or (high is not None and value > high)):
        problems.append(f"{value} is outside its range [{low}, {high}]")
    short, long = _decorator(spec, "min_length"), _decorator(spec, "max_length")
    is_str = isinstance(value, str)
    if is_str and ((short is not None and len(value) < short) or (long is not None and len(value) > long)):
        problems.append(f"{value!r} is outside its length range [{short}, {long}]")
    return problems


def _range_problems(outer: dict[str, Any], inner: dict[str, Any], low: str, high: str) -> list[str]:
    """A bound of the module (inner) that the template parameter (outer) can step over."""
    problems = []
    inner_low, inner_high = _decorator(inner, low), _decorator(inner, high)
    outer_low, outer_high = _decorator(outer, low), _decorator(outer, high)
    allowed = _decorator(outer, "allowed")
    if allowed is not None and all(isinstance(v, int | str) for v in allowed):
        return []  # an @allowed list is checked value by value instead
    if inner_low is not None and (outer_low is None or outer_low < inner_low):
        problems.append(f"the module's @{low}({inner_low}) is stricter than the template's ({outer_low})")
    if inner_high is not None and (outer_high is None or outer_high > inner_high):
        problems.append(f"the module's @{high}({inner_high}) is stricter than the template's ({outer_high})")
    return problems


def flow_problems(outer: dict[str, Any], inner: dict[str, Any]) -> list[str]:
    """Why a template parameter declared as `outer`, passed straight to a module parameter declared as
    `inner`, could be refused by the module (empty: every value the template accepts, the module accepts)."""
    problems = []
    if outer["type"] != inner["type"]:
        problems.append(f"type {outer['type']} is passed to a {inner['type']} parameter")
    outer_allowed, inner_allowed = _decorator(outer, "allowed"), _decorator(inner, "allowed")
    if inner_allowed is not None:
        if outer_allowed is None:
            problems.append(f"the module allows only {inner_allowed}; the template allows any value")
        else:
            extra = [v for v in outer_allowed if v not in inner_allowed]
            if extra:
                problems.append(f"the template allows {extra}, the module's @allowed {inner_allowed} does not")
    if outer_allowed is not None:
        for value in outer_allowed:
            problems += _violations(
                value, {**inner, "decorators": [d for d in inner["decorators"] if d["type"] != "allowed"]}
            )
    problems += _range_problems(outer, inner, "min_value", "max_value")
    problems += _range_problems(outer, inner, "min_length", "max_length")
    if _secure(outer) and not _secure(inner):
        problems.append("a @secure() value is passed to a parameter that is not @secure()")
    default = outer.get("default")
    if default is not None and not isinstance(default, dict | list):
        problems += [f"the template's default: {p}" for p in _violations(default, inner)]
    return problems


def _calls() -> list[tuple[Path, str, Argument]]:
    found = []
    for path in bicep_files():
        for module_name, arguments in _arguments(path).items():
            found += [(path, module_name, argument) for argument in arguments.values()]
    return found


CALLS = _calls()


def test_the_source_reader_sees_every_argument_pycep_sees():
    for path in bicep_files():
        template = parse(path)
        read = _arguments(path)
        for name, mod in template.get("modules", {}).items():
            assert set(read[name]) == set(config(mod)["params"]), f"{path.name}: module {name}"
    assert len(CALLS) > 100


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c[0].stem}.{c[1]}.{c[2].name}")
def test_each_module_accepts_what_is_passed(call):
    path, module_name, argument = call
    template = parse(path)
    mod = template["modules"][module_name]
    target = parse((path.parent / mod["detail"]["path"]).resolve())
    where = f"{path.relative_to(BICEP_DIR)}: module {module_name}, parameter {argument.name}"
    assert argument.name in target["parameters"], f"{where}: the module has no such parameter"
    inner = target["parameters"][argument.name]
    text = argument.text
    literal = _literal(text)
    if literal is not None:
        kind, value = literal
        assert kind == inner["type"], f"{where}: a {kind} literal passed to a {inner['type']} parameter"
        assert not _violations(value, inner), f"{where}: {_violations(value, inner)}"
    elif IDENTIFIER.match(text) and text in template["parameters"]:
        problems = flow_problems(template["parameters"][text], inner)
        assert not problems, f"{where} (from the template's parameter {text}): " + "; ".join(problems)
    elif IDENTIFIER.match(text) and text in template.get("variables", {}):
        value = template["variables"][text]["value"]
        if isinstance(value, str):  # a string variable (literal or interpolated)
            assert inner["type"] == "string", f"{where}: the string variable {text} passed to a {inner['type']}"
    elif text.startswith("'"):
        assert inner["type"] == "string", f"{where}: an interpolated string passed to a {inner['type']} parameter"


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        (
            {"type": "string", "decorators": [{"type": "allowed", "argument": ["us", "gov"]}], "default": "us"},
            {"type": "string", "decorators": [{"type": "allowed", "argument": ["us"]}]},
            "['gov']",
        ),
        (
            {"type": "string", "decorators": [], "default": ""},
            {"type": "string", "decorators": [{"type": "allowed", "argument": ["a"]}]},
            "any value",
        ),
        (
            {"type": "int", "decorators": [{"type": "min_value", "argument": 1}], "default": 5},
            {"type": "int", "decorators": [{"type": "min_value", "argument": 40}]},
            "stricter",
        ),
        ({"type": "int", "decorators": [], "default": 5}, {"type": "string", "decorators": []}, "type int"),
        (
            {"type": "string", "decorators": [{"type": "secure"}], "default": ""},
            {"type": "string", "decorators": []},
            "@secure",
        ),
        (
            {"type": "string", "decorators": [{"type": "max_length", "argument": 80}], "default": "x"},
            {"type": "string", "decorators": [{"type": "max_length", "argument": 56}]},
            "stricter",
        ),
    ],
)
def test_the_check_catches_each_kind_of_mismatch(outer, inner, expected):
    problems = flow_problems(outer, inner)
    assert any(expected in p for p in problems), problems


def test_the_check_accepts_a_template_parameter_the_module_fully_covers():
    outer = {
        "type": "int",
        "decorators": [{"type": "min_value", "argument": 40}, {"type": "max_value", "argument": 100}],
        "default": 40,
    }
    inner = {
        "type": "int",
        "decorators": [{"type": "min_value", "argument": 1}, {"type": "max_value", "argument": 1000}],
    }
    assert flow_problems(outer, inner) == []

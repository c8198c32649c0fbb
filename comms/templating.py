"""Status update templates: Django template syntax over a small, fixed set of variables.

Django renders an unknown variable as an empty string, which would publish "We expect the
next update at ." to thousands of people. So templates are parsed and every variable is
checked against ALLOWED_VARIABLES before anything is saved or rendered; tags other than
`if` are refused too, so a template cannot load libraries or include files.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import TextNode, VariableNode
from django.template.defaulttags import IfNode

ALLOWED_VARIABLES = {
    "reference": "Incident reference, e.g. INC-2026-0042",
    "title": "Incident title",
    "severity": "SEV1 … SEV4",
    "state": "Investigating, Identified, Monitoring or Resolved",
    "affected_services": "Comma-separated names of the affected services",
    "impact": "Each affected service with its impact",
    "next_update_at": "When the next update will come (UTC)",
    "status_page_url": "Public status page address",
}
ALLOWED_FILTERS = {"upper", "lower", "default", "date", "capfirst"}

_engine_with_builtins = Engine(autoescape=False)


def _check_nodes(nodelist, problems: list[str]) -> None:
    for node in nodelist:
        if isinstance(node, TextNode):
            continue
        if isinstance(node, VariableNode):
            _check_expression(node.filter_expression, problems)
        elif isinstance(node, IfNode):
            for condition, body in node.conditions_nodelists:
                if condition is not None:
                    _check_condition(condition, problems)
                _check_nodes(body, problems)
        else:
            problems.append(f"the tag {node.token.contents.split()[0]!r} is not allowed")


def _check_condition(condition, problems: list[str]) -> None:
    value = getattr(condition, "value", None)
    if value is not None and hasattr(value, "var"):
        _check_expression(value, problems)
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            _check_condition(child, problems)


def _check_expression(expression, problems: list[str]) -> None:
    var = expression.var
    name = getattr(var, "var", None)  # a Variable; literals are plain values
    if isinstance(name, str):
        root = name.split(".")[0]
        if root not in ALLOWED_VARIABLES:
            allowed = ", ".join(sorted(ALLOWED_VARIABLES))
            problems.append(f"unknown variable {{{{ {name} }}}} (allowed: {allowed})")
    for func, _args in expression.filters:
        if func.__name__ not in ALLOWED_FILTERS:
            problems.append(f"the filter {func.__name__!r} is not allowed")


def template_validate(text: str) -> None:
    """Raise ValidationError listing every unknown variable, filter or tag."""
    try:
        template = _engine_with_builtins.from_string(text)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"Template syntax error: {exc}") from exc
    problems: list[str] = []
    _check_nodes(template.nodelist, problems)
    if problems:
        raise ValidationError(["Template problem: " + p for p in dict.fromkeys(problems)])


def template_render(text: str, variables: dict) -> str:
    template_validate(text)
    template = _engine_with_builtins.from_string(text)
    return template.render(Context(variables, autoescape=False)).strip()

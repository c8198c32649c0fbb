"""Status update templates: Django template syntax over a small, fixed set of variables.

Django renders an unknown variable as an empty string, which would publish "We expect the
next update at ." to thousands of people. So templates are parsed and every variable is
checked against ALLOWED_VARIABLES before anything is saved or rendered; tags other than
`if` are refused too, so a template cannot load libraries or include files. Filters are
checked with their arguments (ALLOWED_FILTERS): every variable is already text, so a filter
that expects a date or a number would fail at render time, after validation said yes.
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
    "affected_services": "The affected services, e.g. 'DNS and SSO' ('our services' if none)",
    "impact": "What is wrong, e.g. 'a major outage of DNS and degraded performance of SSO'",
    "next_update_at": "When the next update will come (UTC)",
    "status_page_url": "Public status page address",
}
# Filter name -> whether it takes an argument. Every variable is text, so only text
# filters are offered; `default` takes one quoted literal (a variable there would bypass
# the variable check's purpose of never rendering an empty promise).
ALLOWED_FILTERS = {"upper": False, "lower": False, "capfirst": False, "default": True}

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
    for func, args in expression.filters:
        name = func.__name__
        if name not in ALLOWED_FILTERS:
            allowed = ", ".join(sorted(ALLOWED_FILTERS))
            problems.append(f"the filter {name!r} is not allowed (allowed: {allowed})")
        elif ALLOWED_FILTERS[name] and not all(lookup is False for lookup, _ in args):
            problems.append(f"the filter {name!r} takes a quoted text, not a variable")


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
    """Render a validated template. Any failure is a ValidationError, never a crash: the
    preview must tell the writer what is wrong, mid-incident, instead of a server error."""
    template_validate(text)
    template = _engine_with_builtins.from_string(text)
    try:
        return template.render(Context(variables, autoescape=False)).strip()
    except Exception as exc:  # a filter refused its input; say so instead of a 500
        raise ValidationError(f"Template problem: it could not be rendered ({exc}).") from exc

"""Label and field selectors (string syntax of the API server, or dicts for in-process callers)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """The selector string cannot be parsed."""


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Predicate:
    if match := _EQ_RE.match(term):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET_RE.match(term):
        negate, key, op, values = match.groups()
        if op:
            if negate:
                raise SelectorError(f"invalid selector term {term!r}")
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                return lambda labels: labels.get(key) in allowed
            return lambda labels: labels.get(key) not in allowed
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {term!r}")


def _expression(expr: Mapping[str, Any]) -> Predicate:
    key, op, values = expr["key"], expr["operator"], set(expr.get("values") or ())
    tests: dict[str, Predicate] = {
        "In": lambda labels: labels.get(key) in values,
        "NotIn": lambda labels: labels.get(key) not in values,
        "Exists": lambda labels: key in labels,
        "DoesNotExist": lambda labels: key not in labels,
    }
    if op not in tests:
        raise SelectorError(f"unknown operator {op!r}")
    return tests[op]


def label_predicate(selector: str | Mapping[str, Any] | None) -> Predicate:
    """Predicate over an object's labels; selector is a string, a LabelSelector or a label dict."""
    if not selector:
        return lambda obj: True
    if isinstance(selector, str):
        terms = [_label_term(t) for t in _split_terms(selector)]
    elif "matchLabels" in selector or "matchExpressions" in selector:
        terms = [
            (lambda labels, k=k, v=v: labels.get(k) == v)
            for k, v in (selector.get("matchLabels") or {}).items()
        ]
        terms += [_expression(e) for e in selector.get("matchExpressions") or ()]
    else:
        terms = [(lambda labels, k=k, v=v: labels.get(k) == v) for k, v in selector.items()]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string value at a dotted field path ("" when absent), as field selectors compare."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_predicate(selector: str | Mapping[str, str] | None) -> Predicate:
    """Predicate for a field selector ("metadata.name=x,status.phase!=Running") or a dict."""
    if not selector:
        return lambda obj: True
    if isinstance(selector, str):
        terms = []
        for term in _split_terms(selector):
            match = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
            if not match:
                raise SelectorError(f"invalid field selector {term!r}")
            terms.append(match.groups())
    else:
        terms = [(k, "=", v) for k, v in selector.items()]

    def matches(obj: dict[str, Any]) -> bool:
        for path, op, expected in terms:
            equal = field_value(obj, path) == expected
            if equal == (op == "!="):
                return False
        return True

    return matches

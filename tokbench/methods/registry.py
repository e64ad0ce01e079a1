"""The method registry and method spec strings.

A configured method is written as a spec string, ``name`` or ``name(key=value, ...)``
(``random(seed=3)``), parsed safely with :mod:`ast`. Its canonical form (sorted keyword
arguments, defaults dropped) is its id in results, tables and legends.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from typing import Any

from tokbench.errors import SpecError, TokbenchError
from tokbench.methods.base import Method
from tokbench.registry import Registry

__all__ = ["METHODS", "register_method", "parse_method_spec", "split_specs", "build_method", "method_id"]

METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: ``@register_method("random")`` registers a :class:`Method`."""

    def wrap(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) needs a Method subclass, got {cls!r}")
        _check_defaults(name, cls)
        cls.name = name
        return METHODS.register(name, cls, aliases=aliases)

    return wrap


def _check_defaults(name: str, cls: type[Method]) -> None:
    """Every option needs a default: a spec may leave any option out (``name`` alone is a
    valid spec), and ``ls methods`` and :func:`method_id` build the default instance to
    show and drop defaults. A plug-in without one fails here, at import, with one line,
    instead of breaking every listing later."""
    for n, p in inspect.signature(cls.__init__).parameters.items():
        if n != "self" and p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"method {name!r} ({cls.__qualname__}): option {n!r} has no default; every option "
                            f"needs one, since a spec may leave it out (write {n}=... in __init__)")


def split_specs(text: str) -> list[str]:
    """Split ``"none,random,tome(r=8, prop_attn=False)"`` at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    if any(not p for p in parts):
        raise SpecError(f"empty method name in {text!r}: give a comma-separated list such as 'none,random'")
    return parts


_SPEC = re.compile(r"\s*([A-Za-z_][\w+\-]*)\s*(\(.*\))?\s*$", re.DOTALL)


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"random(seed=3)"`` -> ``("random", {"seed": 3})``; values must be Python literals.
    Names may contain ``+`` and ``-`` (``lite++``)."""
    match = _SPEC.match(spec)
    node = None
    if match:
        try:  # the options are parsed as a call of a placeholder name
            node = ast.parse("f" + (match.group(2) or "()"), mode="eval").body
        except SyntaxError:
            node = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        keys = [kw.arg for kw in node.keywords]
        repeated = sorted({k for k in keys if k is not None and keys.count(k) > 1})
        if repeated:  # the ast accepts f(seed=1, seed=2); a dict would silently keep the last
            raise SpecError(f"method spec {spec!r} gives option {', '.join(map(repr, repeated))} more than once: "
                            "give each option once")
        try:
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except ValueError:
            kwargs = None
        if kwargs is not None and None not in kwargs:
            return match.group(1), kwargs
    raise SpecError(
        f"malformed method spec {spec!r}: write name or name(key=value, ...) with literal "
        "values, e.g. random(seed=3)"
    )


def build_method(spec: str, *, p_ratio: float = 1.0) -> Method:
    """Instantiate a method from a spec string at ``p_ratio``.

    Raises:
        UnknownNameError: the name is not registered (with suggestions).
        TokbenchError: an unknown keyword or an invalid value.
    """
    name, kwargs = parse_method_spec(spec)
    cls = METHODS.get(name)
    valid = cls.param_names()
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TokbenchError(
            f"method {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    try:
        return cls(p_ratio=p_ratio, **kwargs)
    except TokbenchError:
        raise
    except (TypeError, ValueError) as e:
        raise TokbenchError(f"invalid options for method {name!r}: {e}") from None


def method_id(method: Method) -> str:
    """Canonical spec of a configured method: name plus the options that differ from
    their defaults, sorted (``random`` or ``random(seed=3)``)."""
    defaults = type(method)(p_ratio=1.0).params() if method.param_names() else {}
    changed = {k: v for k, v in sorted(method.params().items()) if defaults.get(k) != v}
    if not changed:
        return method.name
    return f"{method.name}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

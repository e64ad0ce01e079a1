"""Third-party methods: benchmark your own method without forking tokbench.

A plug-in is a Python module that registers methods when imported (``@register_method``
on a :class:`~tokbench.methods.Method` subclass). tokbench finds plug-ins two ways:

- installed packages that declare the ``tokbench.methods`` entry-point group, e.g. in
  their ``pyproject.toml``::

      [project.entry-points."tokbench.methods"]
      centre = "tokbench_centre"            # a module that registers on import
      # or: centre = "my_pkg.methods:Centre"  (a Method class, registered as "centre")

- ``tokbench --plugin MODULE_OR_FILE`` (repeatable) or ``TOKBENCH_PLUGINS=a,b`` for a local
  module that is not installed (``my_methods``, ``pkg.methods`` or ``./my_methods.py``).

Every command loads them before it starts, so ``run``, ``viz``, ``report``, ``check`` and
``ls`` treat a plug-in method like a built-in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from tokbench.errors import TokbenchError

__all__ = ["ENTRY_POINT_GROUP", "load_entry_points", "load_plugin", "load_plugins", "method_origin"]

ENTRY_POINT_GROUP = "tokbench.methods"

#: Plug-ins already imported by this process (loading is idempotent).
_LOADED: dict[str, str] = {}
#: Top-level module of an entry point -> "distribution version", for ``method_origin``.
_DISTRIBUTIONS: dict[str, str] = {}


class PluginError(TokbenchError):
    """A plug-in that cannot be imported or registers nothing usable."""


def _registered_since(before: set[str]) -> list[str]:
    from tokbench.methods import METHODS

    return sorted(set(METHODS.names()) - before)


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r}) while being imported"
    return f"{type(e).__name__}: {e}"


def load_plugin(target: str) -> list[str]:
    """Import plug-in ``target`` (a dotted module path, importable from the current folder,
    or a ``.py`` file) and return the method names it registered.

    Raises:
        PluginError: not found, failed to import, or registered no method.
    """
    from tokbench.methods import METHODS

    if target in _LOADED:
        return []
    before = set(METHODS.names())
    path = Path(target)
    try:
        if target.endswith(".py"):
            if not path.is_file():
                raise PluginError(f"--plugin {target}: no such file")
            name = f"tokbench_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # a local module, as `python -m` would find it
            importlib.import_module(target)
    except PluginError:
        raise
    except ModuleNotFoundError as e:
        if e.name and (target == e.name or target.startswith(e.name + ".")):
            raise PluginError(f"--plugin {target}: no module named {e.name!r} (give an importable module path "
                              "or a .py file)") from None
        raise PluginError(f"--plugin {target} failed to import: {type(e).__name__}: {e}") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any error in user code becomes one line
        # SystemExit too: a plug-in calling sys.exit() at import would end tokbench silently.
        raise PluginError(f"--plugin {target} failed to import: {_describe(e)}") from None
    _LOADED[target] = target
    names = _registered_since(before)
    if not names:
        raise PluginError(f"--plugin {target} registered no method: decorate a Method subclass with "
                          "@tokbench.methods.register_method('name')")
    return names


def load_entry_points(*, warn=None) -> list[str]:
    """Load every installed ``tokbench.methods`` entry point; returns the names registered.

    A broken installed plug-in must not make every command fail: it is reported through
    ``warn`` (a callable taking one line) and skipped.
    """
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    if not found:
        return []  # without plug-ins, commands that need no torch (plot) do not import it
    from tokbench.methods import METHODS, Method

    registered = []
    for ep in found:
        if ep.value in _LOADED:
            continue
        before = set(METHODS.names())
        dist = getattr(ep.dist, "name", None) or "an installed package"
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Method) and obj not in (
                    METHODS.get(n) for n in METHODS.names()):
                from tokbench.methods import register_method

                register_method(ep.name)(obj)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - SystemExit: see load_plugin
            if warn is not None:
                warn(f"method plug-in {ep.name!r} from {dist} was not loaded: {_describe(e)}")
            continue
        _LOADED[ep.value] = dist
        version = getattr(ep.dist, "version", None)
        _DISTRIBUTIONS[ep.module.split(".")[0]] = f"{dist} {version}" if version else dist
        registered += _registered_since(before)
    return registered


def load_plugins(plugins: tuple[str, ...] | list[str] = (), *, warn=None) -> list[str]:
    """Installed entry points, then ``TOKBENCH_PLUGINS`` (comma-separated), then ``plugins``."""
    names = load_entry_points(warn=warn)
    env = [p.strip() for p in os.environ.get("TOKBENCH_PLUGINS", "").split(",") if p.strip()]
    for target in [*env, *plugins]:
        names += load_plugin(target)
    return names


def method_origin(cls: type) -> str:
    """Where a method class comes from: ``tokbench`` for built-ins, else its module (and
    the installed distribution's version when there is one), recorded with every result."""
    module = cls.__module__
    if module == "tokbench" or module.startswith("tokbench."):
        return "tokbench"
    top = module.split(".")[0]
    if top in _DISTRIBUTIONS:
        return f"{module} ({_DISTRIBUTIONS[top]})"
    try:
        dists = importlib.metadata.packages_distributions().get(top, [])
        if dists:
            return f"{module} ({dists[0]} {importlib.metadata.version(dists[0])})"
    except Exception:  # noqa: BLE001 - metadata is best effort
        pass
    return module

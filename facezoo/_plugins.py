"""Plugin discovery: entry points of the ``facezoo`` group, loaded once, lazily.

Environment:
    FACEZOO_DISABLE_PLUGIN_AUTOLOAD=1  load no entry point (register plugins by hand with
                                       :func:`register_plugin`).
    FACEZOO_PLUGINS=a,b                load only the entry points named a and b.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .registry import Registry

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "facezoo"
HOOKS = {
    "facezoo_register_tasks": ("task", "name"),
    "facezoo_register_models": ("model", "model_id"),
    "facezoo_register_datasets": ("dataset", "name"),
    "facezoo_register_detectors": ("detector", "name"),
    "facezoo_register_teachers": ("teacher", "name"),
    "facezoo_register_commands": ("command", "name"),
    "facezoo_register_backbones": ("backbone", "name"),
}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, distribution, version and the hooks it implements."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version, "hooks": list(self.hooks)}


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.manager: pluggy.PluginManager | None = None
        self.registry: Registry | None = None
        self.models_stale = False
        self.dists: dict[str, tuple[str, str]] = {}
        self.skipped: set[str] = set()  # plugins whose registration raised (warned once)


_state = _State()


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("facezoo")
    manager.add_hookspecs(hookspecs)
    return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    if os.environ.get("FACEZOO_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in ("", "0"):
        logger.info("FACEZOO_DISABLE_PLUGIN_AUTOLOAD is set: no plugin loaded from entry points")
        return
    allowed = {n.strip() for n in os.environ.get("FACEZOO_PLUGINS", "").split(",") if n.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed and ep.name not in allowed:
            continue
        if manager.has_plugin(ep.name):
            continue
        dist = ep.dist.name if ep.dist else "unknown distribution"
        version = ep.dist.version if ep.dist else ""
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break facezoo
            warnings.warn(
                f"facezoo plugin {ep.name!r} from distribution {dist!r} failed to load and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        _state.dists[ep.name] = (dist, version)


def _collect(manager: pluggy.PluginManager, registry: Registry, hooks: dict[str, tuple[str, str]] = HOOKS) -> Registry:
    """Call the registration ``hooks`` of every plugin, adding what they register to ``registry``.

    ``register`` takes one spec or an iterable of specs. A plugin whose hook raises is skipped
    whole: a warning names it and its distribution, its registrations (from all ``hooks``) are
    dropped and the other plugins work as before.
    """
    for name, plugin in manager.list_name_plugin():
        if plugin is None or name in _state.skipped:
            continue
        added: list[tuple[str, str, Any]] = []

        def register(items: Any, kind: str, key: str, added: list = added) -> None:
            for item in items if isinstance(items, Iterable) else (items,):
                added.append((kind, getattr(item, key), item))

        try:
            for hook_name, (kind, key) in hooks.items():
                for impl in getattr(manager.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == name:
                        impl.function(register=functools.partial(register, kind=kind, key=key))
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break facezoo
            dist = _state.dists.get(name, ("registered by hand", ""))[0]
            warnings.warn(
                f"facezoo plugin {name!r} (distribution {dist!r}) failed while registering and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
            _state.skipped.add(name)
            continue
        for kind, key, item in added:
            registry.add(kind, key, item, name)
    return registry


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    with _state.lock:
        if _state.manager is None:
            manager = _new_manager()
            _load_entry_points(manager)
            _state.manager = manager
        return _state.manager


def registry() -> Registry:
    """Everything registered by the loaded plugins (collected once, then cached)."""
    with _state.lock:
        if _state.registry is None:
            _state.skipped = set()
            _state.registry = _collect(plugin_manager(), Registry())
            _state.models_stale = False
        elif _state.models_stale:
            _state.models_stale = False
            _state.registry.clear("model")
            _collect(plugin_manager(), _state.registry, {"facezoo_register_models": HOOKS["facezoo_register_models"]})
        return _state.registry


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object by hand (for scripts and tests, or with autoload off).

    Example:
        >>> import facezoo, types
        >>> facezoo.register_plugin(types.SimpleNamespace(), name="nothing")
        >>> facezoo.unregister_plugin("nothing")
    """
    with _state.lock:
        manager = plugin_manager()
        manager.register(plugin, name=name)
        _state.registry = None  # re-collect on next use; a clash raises there, naming both plugins
        try:
            registry()
        except Exception:
            manager.unregister(plugin)
            _state.registry = None
            raise


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered under ``name``."""
    with _state.lock:
        plugin_manager().unregister(name=name)
        _state.dists.pop(name, None)
        _state.registry = None


def forget_models() -> None:
    """Forget the registered pretrained models only: the next use asks every plugin's
    ``facezoo_register_models`` again (a model directory just written into a plugin's weights
    folder is found then). Plugins, hand-registered ones included, and their tasks stay.

    Example:
        >>> facezoo._plugins.forget_models()
        >>> "beauty/efficientnet_lite0.face-init" in facezoo.list_models()
        True
    """
    with _state.lock:
        _state.models_stale = True


def reset() -> None:
    """Forget all plugins; the next use loads entry points again (for tests)."""
    with _state.lock:
        _state.manager = None
        _state.registry = None
        _state.dists = {}
        _state.skipped = set()


def list_plugins() -> list[PluginInfo]:
    """The loaded plugins with their distribution, version and implemented hooks.

    Example:
        >>> "beauty" in [p.name for p in facezoo.list_plugins()]
        True
    """
    manager = plugin_manager()
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in manager.get_hookcallers(plugin) or []))
        dist, version = _state.dists.get(name, ("(registered by hand)", ""))
        infos.append(PluginInfo(name=name, distribution=dist, version=version, hooks=hooks))
    return sorted(infos, key=lambda p: p.name)

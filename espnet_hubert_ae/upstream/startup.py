"""Start-up registration of ``hubert_ae_local`` in s3prl's hub and of the log-mel HuBERT encoder
in ESPnet's task tables, without importing s3prl or ESPnet.

Stock tools look upstreams up in the module ``s3prl.hub`` (``S3PRLUpstream``, ESPnet's
``S3prlFrontend``, s3prl's ``run_downstream.py``) and encoders up in the tables of ESPnet's task
modules (``espnet2.tasks.hubert``, ``espnet2.tasks.asr``: ``HubertTask.build_model_from_file``,
s3prl's ``espnet_hubert_local``), and they run in Python processes that never import this
package. The installed ``espnet_hubert_ae_s3prl.pth`` file (see setup.py) calls :func:`install`
when Python starts: it puts a finder on ``sys.meta_path`` that does nothing until one of those
modules is imported, and then adds our entry to that module once it has loaded. Importing them
takes seconds, so it is never triggered here; other imports pay one dictionary look-up each.

This module is imported at every interpreter start, so it imports only modules that Python's
start-up has loaded already (not even ``importlib.abc`` or ``typing``: they cost ~20 ms; the
finder and loader protocols need no base classes). Set ``HUBERT_AE_S3PRL_HOOK=0`` to switch
the hook off.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Callable

HUB_MODULE = "s3prl.hub"
ESPNET_TASK_MODULES = ("espnet2.tasks.hubert", "espnet2.tasks.asr")  # model.encoders.TASK_MODULES
DISABLE_ENV = "HUBERT_AE_S3PRL_HOOK"


class _CallbackLoader:
    """Wraps a module's own loader so that a callback runs once the module has executed."""

    def __init__(self, loader, callback: Callable[[ModuleType], None]):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str):
        # get_source, get_filename, ...: tracebacks and inspect keep working.
        return getattr(self._loader, name)


class PostImportHook:
    """A meta-path finder that calls ``callbacks[name](module)`` right after module ``name`` is imported.

    It finds nothing itself: it asks the finders behind it for the module's spec and wraps the
    loader, so the module loads exactly as it would without the hook.
    """

    def __init__(self, callbacks: dict[str, Callable[[ModuleType], None]]):
        self.callbacks = dict(callbacks)

    def find_spec(self, fullname, path=None, target=None):
        callback = self.callbacks.get(fullname)
        if callback is None:
            return None
        spec = self._find_with_other_finders(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _CallbackLoader(spec.loader, callback)
        return spec

    def _find_with_other_finders(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


def _warn(what: str, err: Exception) -> None:
    import warnings

    warnings.warn(f"espnet_hubert_ae could not register {what}: {err!r}", RuntimeWarning)


def _register_in_hub(hub: ModuleType) -> None:
    """Add our upstream to s3prl's hub; a failure warns instead of breaking s3prl's import."""
    try:
        from espnet_hubert_ae.upstream.hubconf import register

        register(hub)
    except Exception as err:  # noqa: BLE001 - s3prl itself must stay importable
        _warn("its s3prl upstream", err)


def _register_encoder(task_module: ModuleType) -> None:
    """Add the log-mel HuBERT encoder to an ESPnet task's table; a failure warns."""
    try:
        from espnet_hubert_ae.model.encoders import register

        register(task_module)
    except Exception as err:  # noqa: BLE001 - ESPnet itself must stay importable
        _warn(f"its log-mel HuBERT encoder in {task_module.__name__}", err)


def default_callbacks() -> dict[str, Callable[[ModuleType], None]]:
    return {HUB_MODULE: _register_in_hub, **{name: _register_encoder for name in ESPNET_TASK_MODULES}}


def install(callbacks: dict[str, Callable[[ModuleType], None]] | None = None) -> PostImportHook | None:
    """Arrange for our entries to be added to s3prl's hub and ESPnet's task tables when imported.

    ``callbacks`` maps module names to what to call on them (default: :func:`default_callbacks`).
    Idempotent: one hook, which takes on new callbacks; a module imported already gets its
    callback at once. Returns the hook, or None when switched off through ``HUBERT_AE_S3PRL_HOOK=0``.
    """
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    callbacks = default_callbacks() if callbacks is None else callbacks
    hook = next((f for f in sys.meta_path if isinstance(f, PostImportHook)), None)
    if hook is None:
        hook = PostImportHook({})
        sys.meta_path.insert(0, hook)
    for name, callback in callbacks.items():
        if name in hook.callbacks:
            continue
        hook.callbacks[name] = callback
        if name in sys.modules:
            callback(sys.modules[name])
    return hook

"""Start-up registration of ``hubert_ae_local`` in s3prl's hub, without importing s3prl.

Stock tools look upstreams up in the module ``s3prl.hub`` (``S3PRLUpstream``, ESPnet's
``S3prlFrontend``, s3prl's ``run_downstream.py``), and they run in Python processes that never
import this package. The installed ``espnet_hubert_ae_s3prl.pth`` file (see setup.py) calls
:func:`install` when Python starts: it puts a finder on ``sys.meta_path`` that does nothing
until ``s3prl.hub`` itself is imported, and then adds our upstream to that module once it has
loaded. Importing ``s3prl.hub`` takes seconds, so it is never triggered here; processes that
do not use s3prl pay one string comparison per import.

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
    """A meta-path finder that calls ``callback(module)`` right after ``target`` is imported.

    It finds nothing itself: it asks the finders behind it for ``target``'s spec and wraps the
    loader, so the module loads exactly as it would without the hook.
    """

    def __init__(self, target: str, callback: Callable[[ModuleType], None]):
        self.target = target
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.target:
            return None
        spec = self._find_with_other_finders(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _CallbackLoader(spec.loader, self.callback)
        return spec

    def _find_with_other_finders(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


def _register_in_hub(hub: ModuleType) -> None:
    """Add our upstream to s3prl's hub; a failure warns instead of breaking s3prl's import."""
    try:
        from espnet_hubert_ae.upstream.hubconf import register

        register(hub)
    except Exception as err:  # noqa: BLE001 - s3prl itself must stay importable
        import warnings

        warnings.warn(f"espnet_hubert_ae could not register its s3prl upstream: {err!r}", RuntimeWarning)


def install(target: str = HUB_MODULE) -> PostImportHook | None:
    """Arrange for our upstream to be added to ``target`` (s3prl's hub) when it is imported.

    Idempotent; registers at once when the hub is already imported. Returns the hook, or
    None when switched off through ``HUBERT_AE_S3PRL_HOOK=0``.
    """
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    for finder in sys.meta_path:
        if isinstance(finder, PostImportHook) and finder.target == target:
            return finder
    hook = PostImportHook(target, _register_in_hub)
    sys.meta_path.insert(0, hook)
    if target in sys.modules:
        _register_in_hub(sys.modules[target])
    return hook

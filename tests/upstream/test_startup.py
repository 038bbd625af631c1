"""The start-up hook that registers ``hubert_ae_local`` when s3prl's hub is imported."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from espnet_hubert_ae.upstream import startup


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    """A throwaway importable package ``fakehub_pkg.hub`` (cleaned from sys.modules afterwards)."""
    package = tmp_path / "fakehub_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hub.py").write_text("def builtin_entry():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fakehub_pkg.hub"
    for name in ("fakehub_pkg.hub", "fakehub_pkg"):
        sys.modules.pop(name, None)


def test_hook_calls_back_once_after_the_module_ran(fake_module):
    seen = []
    hook = startup.PostImportHook({fake_module: lambda module: seen.append(module.builtin_entry())})
    sys.meta_path.insert(0, hook)
    try:
        module = importlib.import_module(fake_module)
        importlib.import_module(fake_module)
    finally:
        sys.meta_path.remove(hook)
    assert seen == [1]
    # The module loaded as usual: its own loader answers get_source (tracebacks, inspect).
    assert "builtin_entry" in module.__loader__.get_source(fake_module)
    assert module.__spec__.origin.endswith("hub.py")


def test_hook_ignores_other_modules(fake_module):
    hook = startup.PostImportHook({"not.this.one": lambda module: pytest.fail("called for another module")})
    sys.meta_path.insert(0, hook)
    try:
        importlib.import_module(fake_module)
    finally:
        sys.meta_path.remove(hook)


def test_install_is_idempotent_and_registers_an_already_imported_hub(fake_module, monkeypatch):
    module = importlib.import_module(fake_module)
    before = list(sys.meta_path)
    try:
        hook = startup.install({fake_module: startup._register_in_hub})
        assert startup.install({fake_module: startup._register_in_hub}) is hook
        assert callable(module.hubert_ae_local)
    finally:
        sys.meta_path[:] = before


def test_install_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(startup.DISABLE_ENV, "0")
    assert startup.install() is None


def test_startup_pth_is_installed():
    site_packages = Path(sysconfig.get_paths()["purelib"])
    pth = site_packages / "espnet_hubert_ae_s3prl.pth"
    assert pth.is_file(), "reinstall the package (pip install -e .): the start-up .pth file is missing"
    assert "espnet_hubert_ae.upstream.startup" in pth.read_text()


def _fresh_python(code: str, tmp_path: Path, extra_path: Path | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(extra_path)} if extra_path else None
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_fresh_process_pays_no_s3prl_import(tmp_path):
    out = _fresh_python(
        """
        import sys
        print(type(sys.meta_path[0]).__name__, 's3prl' in sys.modules, 'torch' in sys.modules)
        """,
        tmp_path,
    )
    assert out.split() == ["PostImportHook", "False", "False"]


def test_fresh_process_sees_the_upstream_in_the_hub(tmp_path):
    # A stand-in for s3prl (the real hub takes ~16 s to import): same module name, same role.
    stub = tmp_path / "stub"
    (stub / "s3prl").mkdir(parents=True)
    (stub / "s3prl" / "__init__.py").write_text("")
    (stub / "s3prl" / "hub.py").write_text(
        "def options():\n    return [n for n, v in globals().items() if callable(v) and not n.startswith('_')]\n"
    )
    out = _fresh_python(
        """
        import s3prl.hub
        print('hubert_ae_local' in s3prl.hub.options(), s3prl.hub.hubert_ae_local.__module__)
        """,
        tmp_path,
        extra_path=stub,
    )
    assert out.split() == ["True", "espnet_hubert_ae.upstream.hubconf"]


def test_fresh_process_builds_a_log_mel_checkpoint_with_stock_espnet(tmp_path, logmel_hubert_checkpoint):
    """The start-up hook puts the log-mel encoder in ESPnet's table: stock loading needs nothing else."""
    out = _fresh_python(
        f"""
        from espnet2.tasks.hubert import HubertTask
        model, _ = HubertTask.build_model_from_file(
            "{logmel_hubert_checkpoint.parent / 'config.yaml'}", "{logmel_hubert_checkpoint}", "cpu")
        import sys
        print(type(model.encoder).__name__, "espnet_hubert_ae.upstream.hubconf" in sys.modules)
        """,
        tmp_path,
    )
    assert out.split()[-2:] == ["LogMelHuBERTPretrainEncoder", "False"]

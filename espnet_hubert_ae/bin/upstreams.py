"""Stage 6: register every kept pretraining checkpoint as an S3PRL upstream, and list them.

    python -m espnet_hubert_ae.bin.upstreams register --expdir exp      # writes exp/upstreams.json
    python -m espnet_hubert_ae.bin.upstreams list                       # name, step, checkpoint
    python -m espnet_hubert_ae.bin.upstreams show progressive_tiny_120/p2/step60

Names are ``<run>/p<phase>/step<global step>``, the run being the pretraining run's directory
(``exp/pretrain/<run>/``). A registered name (or a checkpoint path) is what ``hubert_ae_local``
takes, e.g. ``S3PRLUpstream("hubert_ae_local", path_or_url="progressive_tiny_120/p2/step60")``.
Names are looked up in ``--registry``, else ``$HUBERT_AE_REGISTRY``, else the nearest
``exp/upstreams.json`` from the current directory upward.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from espnet_hubert_ae.upstream.registry import (
    REGISTRY_RELPATH,
    collect_entries,
    find_registry,
    read_registry,
    write_registry,
)
from espnet_hubert_ae.utils.cli import cli_main

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="scan <expdir>/pretrain/*/checkpoints.json and write the registry")
    reg.add_argument("--expdir", type=Path, default=Path("exp"), help="experiment tree of the recipe")
    reg.add_argument("--registry", type=Path, default=None,
                     help="registry file (default: <expdir>/upstreams.json)")
    lst = sub.add_parser("list", help="list the registered upstreams")
    lst.add_argument("--registry", type=Path, default=None,
                     help=f"registry file (default: nearest {REGISTRY_RELPATH})")
    lst.add_argument("--json", action="store_true", help="print the entries as JSON")
    show = sub.add_parser("show", help="print the checkpoint and config of one registered name")
    show.add_argument("name")
    show.add_argument("--registry", type=Path, default=None)
    return p


def _registry_in_use(path: Path | None) -> Path:
    path = path or find_registry()
    if path is None:
        raise FileNotFoundError("no upstream registry: run stage 6 (`upstreams register`) or pass --registry")
    return path


def register(expdir: Path, registry: Path | None) -> int:
    if not expdir.is_dir():
        raise FileNotFoundError(f"--expdir {expdir}: no such directory")
    entries = collect_entries(expdir)
    if not entries:
        raise FileNotFoundError(f"{expdir}/pretrain/*/checkpoints.json lists no checkpoint: run stage 5 first")
    path = write_registry(registry or expdir / "upstreams.json", entries)
    logger.info("registered %d upstreams in %s", len(entries), path)
    _warn_without_startup_hook()
    return 0


def _warn_without_startup_hook() -> None:
    """Other processes know ``hubert_ae_local`` only through the installed start-up hook."""
    from espnet_hubert_ae.upstream.startup import PostImportHook

    if not any(isinstance(finder, PostImportHook) for finder in sys.meta_path):
        logger.warning("the s3prl start-up hook is not installed (espnet_hubert_ae_s3prl.pth): s3prl and "
                       "ESPnet will not know hubert_ae_local; reinstall the package (make setup, or "
                       "pip install -e .)")


def list_upstreams(registry: Path | None, as_json: bool) -> int:
    path = _registry_in_use(registry)
    entries = list(read_registry(path).values())
    if as_json:
        print(json.dumps([{**e.__dict__, "checkpoint": str(e.checkpoint), "config": str(e.config)} for e in entries],
                         indent=2))
        return 0
    print(f"# {len(entries)} upstreams in {path} (use with hubert_ae_local)")
    width = max((len(e.name) for e in entries), default=4)
    for e in entries:
        print(f"{e.name:<{width}}  {e.step:>8}  {'phase end' if e.phase_end else 'snapshot ':9}  {e.checkpoint}")
    return 0


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "register":
        return register(args.expdir, args.registry)
    if args.command == "list":
        return list_upstreams(args.registry, args.json)
    entry = read_registry(_registry_in_use(args.registry)).lookup(args.name)
    print(f"checkpoint {entry.checkpoint}\nconfig {entry.config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

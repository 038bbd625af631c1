"""The upstream registry: readable names for every checkpoint that pretraining kept.

Stage 6 writes ``exp/upstreams.json``, mapping names such as ``progressive/p2/step1200``
(strategy / phase / global step) to a checkpoint ``.pth`` and the ``config.yaml`` that builds
it. ``hubert_ae_local`` accepts these names wherever it accepts a checkpoint path.

Which registry a name is looked up in:
1. the ``registry`` argument (``extra_conf: {registry: ...}`` in s3prl / ESPnet configs);
2. the file named by the environment variable ``HUBERT_AE_REGISTRY``;
3. ``exp/upstreams.json`` in the current directory or the nearest parent that has one
   (so names work from the recipe directory and below it).

Paths are stored relative to the registry file, so the experiment tree can be moved whole.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Iterable

from espnet_hubert_ae.utils.fileio import atomic_write_text

REGISTRY_ENV = "HUBERT_AE_REGISTRY"
REGISTRY_RELPATH = Path("exp") / "upstreams.json"
CHECKPOINT_LIST = "checkpoints.json"
CONFIG_NAME = "config.yaml"
FORMAT_VERSION = 1


class UpstreamError(ValueError):
    """A checkpoint, config, registry or upstream name that cannot be used; says which and why."""


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One registered checkpoint: its readable name and what produced it."""

    name: str
    checkpoint: Path
    config: Path
    strategy: str
    phase: str
    step: int
    experiment: str = ""
    phase_end: bool = False  # the last checkpoint of its phase (the others are snapshots within it)


# --- reading what pretraining kept --------------------------------------------------------

_PATH_KEYS = ("path", "checkpoint", "ckpt", "model")
_CONFIG_KEYS = ("config", "config_path", "config_yaml")
_STEP_KEYS = ("global_step", "step", "steps")


def _first(record: dict, keys: Iterable[str], what: str, source: Path):
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    raise UpstreamError(f"{source}: a checkpoint record has no {what} (looked for {', '.join(keys)}): {record}")


def _locate(path: str, source: Path) -> Path:
    """A path from a checkpoints.json: absolute, relative to that file's directory, or to cwd."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in (source.parent, Path.cwd()):
        if (base / candidate).exists():
            return (base / candidate).resolve()
    return (source.parent / candidate).resolve()


def _phase_label(phase) -> str:
    return f"p{phase}" if isinstance(phase, int) or str(phase).isdigit() else str(phase)


def read_checkpoint_list(path: str | os.PathLike) -> list[RegistryEntry]:
    """Entries (names not yet unique) for the checkpoints listed in one ``checkpoints.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UpstreamError(f"cannot read the checkpoint list {path}: {err}") from err
    records = data.get("checkpoints") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise UpstreamError(f"{path}: expected a list of checkpoints (or {{'checkpoints': [...]}})")
    experiment = path.parent.name
    entries = []
    for record in records:
        checkpoint = _locate(str(_first(record, _PATH_KEYS, "checkpoint path", path)), path)
        config_value = next((record[k] for k in _CONFIG_KEYS if record.get(k)), None)
        config = _locate(str(config_value), path) if config_value else checkpoint.parent / CONFIG_NAME
        strategy = str(record.get("strategy") or experiment)
        phase = _phase_label(record.get("phase", 0))
        step = int(_first(record, _STEP_KEYS, "global step", path))
        entries.append(RegistryEntry(f"{strategy}/{phase}/step{step}", checkpoint, config, strategy, phase, step,
                                     experiment, bool(record.get("phase_end", False))))
    return entries


def _unique_names(entries: list[RegistryEntry]) -> list[RegistryEntry]:
    """Disambiguate names shared by different checkpoints: the experiment, then the file stem."""
    entries = list({(e.name, e.checkpoint): e for e in entries}.values())

    def rename(items, make):
        counts: dict[str, int] = {}
        for e in items:
            counts[e.name] = counts.get(e.name, 0) + 1
        return [dataclasses.replace(e, name=make(e)) if counts[e.name] > 1 else e for e in items]

    entries = rename(entries, lambda e: f"{e.experiment}/{e.name}")
    entries = rename(entries, lambda e: f"{e.name}/{e.checkpoint.stem}")
    return entries


def collect_entries(expdir: str | os.PathLike) -> list[RegistryEntry]:
    """Every checkpoint kept under ``expdir/pretrain/*/checkpoints.json``, checked to exist."""
    lists = sorted(Path(expdir).glob(f"pretrain/*/{CHECKPOINT_LIST}"))
    entries = [e for path in lists for e in read_checkpoint_list(path)]
    for entry in entries:
        for what, path in (("checkpoint", entry.checkpoint), ("config", entry.config)):
            if not path.is_file():
                raise UpstreamError(f"{entry.name}: the {what} {path} listed by pretraining does not exist")
    entries = _unique_names(entries)
    return sorted(entries, key=lambda e: (e.experiment, e.strategy, e.phase, e.step, e.name))


# --- the registry file --------------------------------------------------------------------

def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())


def write_registry(path: str | os.PathLike, entries: list[RegistryEntry]) -> Path:
    """Write the registry atomically; paths are stored relative to its directory."""
    path = Path(path)
    base = path.parent
    records = [
        {**dataclasses.asdict(e), "checkpoint": _relative(e.checkpoint, base), "config": _relative(e.config, base)}
        for e in entries
    ]
    atomic_write_text(path, json.dumps({"version": FORMAT_VERSION, "upstreams": records}, indent=2) + "\n")
    return path


def read_registry(path: str | os.PathLike) -> dict[str, RegistryEntry]:
    """Name -> entry, with absolute paths."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = data["upstreams"]
        entries = [
            RegistryEntry(**{**r, "checkpoint": (path.parent / r["checkpoint"]).resolve(),
                             "config": (path.parent / r["config"]).resolve()})
            for r in records
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise UpstreamError(f"cannot read the upstream registry {path}: {err!r}") from err
    return {e.name: e for e in entries}


def find_registry(start: str | os.PathLike | None = None) -> Path | None:
    """The registry in use: ``$HUBERT_AE_REGISTRY``, else the nearest ``exp/upstreams.json`` upward."""
    from_env = os.environ.get(REGISTRY_ENV)
    if from_env:
        if not Path(from_env).is_file():
            raise UpstreamError(f"{REGISTRY_ENV}={from_env}: no such registry file")
        return Path(from_env)
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / REGISTRY_RELPATH).is_file():
            return directory / REGISTRY_RELPATH
    return None


def lookup(name: str, registry: str | os.PathLike | None = None) -> RegistryEntry:
    """The entry registered as ``name``; an unknown name fails listing the close ones."""
    registry_path = Path(registry) if registry else find_registry()
    if registry_path is None:
        raise UpstreamError(
            f"'{name}' is not a checkpoint file, and no upstream registry was found to look it up "
            f"(set {REGISTRY_ENV}, or run from the recipe directory after stage 6)")
    entries = read_registry(registry_path)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.5)
    hint = f"close names: {', '.join(close)}" if close else f"{len(entries)} registered; list them with " \
        "`python -m espnet_hubert_ae.bin.upstreams list`"
    raise UpstreamError(f"'{name}' is neither a checkpoint file nor registered in {registry_path} ({hint})")


# --- what hubert_ae_local is given ----------------------------------------------------------

def resolve_upstream(name_or_path: str | os.PathLike | None, config: str | os.PathLike | None = None,
                     registry: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(checkpoint, config) for a checkpoint path or a registered name.

    The config is ``config`` when given, else ``config.yaml`` beside the checkpoint.
    """
    if not name_or_path:
        raise UpstreamError("hubert_ae_local needs a checkpoint path or a registered name (path_or_url / -k)")
    candidate = Path(name_or_path)
    if candidate.is_dir():
        raise UpstreamError(f"{candidate} is a directory; give the checkpoint .pth file inside it")
    if candidate.is_file():
        checkpoint = candidate
        config_path = Path(config) if config else candidate.parent / CONFIG_NAME
    else:
        entry = lookup(str(name_or_path), registry)
        checkpoint, config_path = entry.checkpoint, Path(config) if config else entry.config
    if not checkpoint.is_file():
        raise UpstreamError(f"checkpoint {checkpoint} does not exist")
    if not config_path.is_file():
        raise UpstreamError(
            f"no config for checkpoint {checkpoint}: {config_path} does not exist (the ESPnet HuBERT "
            f"config.yaml must sit beside the .pth, or be given as config= / -g)")
    return checkpoint, config_path

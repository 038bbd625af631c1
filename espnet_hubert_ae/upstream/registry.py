"""The upstream registry: a name for every checkpoint that pretraining kept, and the lookups in it.

Stage 6 writes ``exp/upstreams.json``, mapping names ``<run>/p<phase>/step<N>`` (run tag,
phase, global step; see :mod:`espnet_hubert_ae.utils.naming`), e.g.
``progressive_tiny_120/p2/step60``, to a checkpoint ``.pth`` and the ``config.yaml`` that builds
it. ``hubert_ae_local`` accepts these names wherever it accepts a checkpoint path.

:class:`CheckpointRef` is the one reference to a checkpoint that every stage passes around;
:class:`Registry` holds the registered ones and answers the lookups: a name, every checkpoint,
the last checkpoint of a run, the reference of a checkpoint file (its registered name if it
has one, else a tag of its path).

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
from collections.abc import Mapping
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from espnet_hubert_ae.utils.fileio import atomic_write_text
from espnet_hubert_ae.utils.naming import upstream_name, upstream_tag

REGISTRY_ENV = "HUBERT_AE_REGISTRY"
REGISTRY_RELPATH = Path("exp") / "upstreams.json"
CHECKPOINT_LIST = "checkpoints.json"
CONFIG_NAME = "config.yaml"
FORMAT_VERSION = 2  # 2: names <run>/p<phase>/step<N>, integer phases


class UpstreamError(ValueError):
    """A checkpoint, config, registry or upstream name that cannot be used; says which and why."""


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint, the config that builds it, and where it sits in pretraining (when known)."""

    name: str  # registered name, or the tag of an unregistered file
    checkpoint: Path
    config: Path | None = None  # None: config.yaml beside the checkpoint
    run: str | None = None
    strategy: str | None = None
    phase: int | None = None
    step: int | None = None
    phase_end: bool = False  # the last checkpoint of its phase (the others are snapshots within it)

    @classmethod
    def for_file(cls, checkpoint: str | os.PathLike, config: str | os.PathLike | None = None) -> CheckpointRef:
        """An unregistered checkpoint file, named by the tag of its path."""
        checkpoint = Path(checkpoint)
        return cls(upstream_tag(checkpoint), checkpoint, Path(config) if config else checkpoint.parent / CONFIG_NAME)

    @property
    def tag(self) -> str:
        """A file or directory name for this checkpoint (its results, its experiments)."""
        return upstream_tag(self.name)


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


def _integer(record: dict, keys: Sequence[str], what: str, source: Path) -> int:
    value = _first(record, keys, what, source)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UpstreamError(f"{source}: the {what} of a checkpoint record is not an integer: {record}") from None


def read_checkpoint_list(path: str | os.PathLike) -> list[CheckpointRef]:
    """The checkpoints listed in one run's ``checkpoints.json`` (the run: its directory's name)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UpstreamError(f"cannot read the checkpoint list {path}: {err}") from err
    records = data.get("checkpoints") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise UpstreamError(f"{path}: expected a list of checkpoints (or {{'checkpoints': [...]}})")
    refs = []
    for record in records:
        run = str(record.get("run") or path.parent.name)
        checkpoint = _locate(str(_first(record, _PATH_KEYS, "checkpoint path", path)), path)
        config_value = next((record[k] for k in _CONFIG_KEYS if record.get(k)), None)
        config = _locate(str(config_value), path) if config_value else checkpoint.parent / CONFIG_NAME
        phase = _integer(record, ("phase",), "phase", path)
        step = _integer(record, _STEP_KEYS, "global step", path)
        strategy = str(record.get("strategy") or run)
        refs.append(CheckpointRef(upstream_name(run, phase, step), checkpoint, config, run, strategy, phase, step,
                                  bool(record.get("phase_end", False))))
    return refs


def collect_entries(expdir: str | os.PathLike) -> list[CheckpointRef]:
    """Every checkpoint kept under ``expdir/pretrain/*/checkpoints.json``, checked to exist."""
    lists = sorted(Path(expdir).glob(f"pretrain/*/{CHECKPOINT_LIST}"))
    refs: dict[str, CheckpointRef] = {}
    for ref in (ref for path in lists for ref in read_checkpoint_list(path)):
        for what, path in (("checkpoint", ref.checkpoint), ("config", ref.config)):
            if not path.is_file():
                raise UpstreamError(f"{ref.name}: the {what} {path} listed by pretraining does not exist")
        other = refs.setdefault(ref.name, ref)
        if other.checkpoint != ref.checkpoint:
            raise UpstreamError(f"two checkpoints are both named {ref.name}: {other.checkpoint} and {ref.checkpoint}")
    return sorted(refs.values(), key=lambda r: (r.run, r.phase, r.step))


# --- the registry --------------------------------------------------------------------------


class Registry(Mapping[str, CheckpointRef]):
    """Registered checkpoints by name, and the lookups every stage makes in them."""

    def __init__(self, refs: Iterable[CheckpointRef] = (), path: Path | None = None):
        self._refs = {ref.name: ref for ref in refs}
        self.path = path  # the file it was read from (None: no registry found)

    def __getitem__(self, name: str) -> CheckpointRef:
        return self._refs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def _where(self) -> str:
        return str(self.path) if self.path else "no registry"

    def lookup(self, name: str) -> CheckpointRef:
        """The checkpoint registered as ``name``; an unknown name fails listing the close ones."""
        if self.path is None:
            raise UpstreamError(
                f"'{name}' is not a checkpoint file, and no upstream registry was found to look it up "
                f"(set {REGISTRY_ENV}, or run from the recipe directory after stage 6)")
        if name in self._refs:
            return self._refs[name]
        close = difflib.get_close_matches(name, list(self._refs), n=5, cutoff=0.5)
        hint = f"close names: {', '.join(close)}" if close else f"{len(self)} registered; list them with " \
            "`python -m espnet_hubert_ae.bin.upstreams list`"
        raise UpstreamError(f"'{name}' is neither a checkpoint file nor registered in {self.path} ({hint})")

    def runs(self) -> list[str]:
        return sorted({ref.run for ref in self.values() if ref.run})

    def last_per_run(self) -> dict[str, CheckpointRef]:
        """Run -> its last checkpoint (latest phase, then latest step)."""
        last: dict[str, CheckpointRef] = {}
        for ref in self.values():
            if ref.run and (ref.run not in last or (ref.phase, ref.step) > (last[ref.run].phase, last[ref.run].step)):
                last[ref.run] = ref
        return last

    def last(self, run: str) -> CheckpointRef:
        """The last checkpoint of pretraining run ``run`` (its run tag)."""
        found = self.last_per_run().get(run)
        if found is None:
            raise UpstreamError(f"{self._where()}: no checkpoint of pretraining run '{run}' is registered "
                                f"(registered runs: {', '.join(self.runs()) or 'none'}; run stages 5-6 first)")
        return found

    def registered(self, checkpoint: str | os.PathLike) -> CheckpointRef | None:
        """The registered reference of a checkpoint file, if it is registered."""
        resolved = Path(checkpoint).resolve()
        return next((ref for ref in self.values() if ref.checkpoint == resolved), None)

    def ref(self, name_or_path: str | os.PathLike, config: str | os.PathLike | None = None) -> CheckpointRef:
        """The reference of a registered name or of a checkpoint file (its registered name if it
        has one, else the tag of its path). ``config`` replaces the checkpoint's own."""
        candidate = Path(name_or_path)
        if candidate.is_dir():
            raise UpstreamError(f"{candidate} is a directory; give the checkpoint .pth file inside it")
        if candidate.is_file():
            ref = self.registered(candidate) or CheckpointRef.for_file(candidate)
        else:
            ref = self.lookup(str(name_or_path))
        return dataclasses.replace(ref, config=Path(config)) if config else ref

    def select(self, names: Sequence[str]) -> list[CheckpointRef]:
        """References for registered names, checkpoint files, or ``all`` (every registered one),
        each once, in the given order."""
        refs: dict[str, CheckpointRef] = {}
        for name in names:
            if name == "all":
                if self.path is None:
                    raise UpstreamError("'all' checkpoints: no upstream registry found; register checkpoints "
                                        "first (stage 6)")
                chosen = list(self.values())
            else:
                chosen = [self.ref(name)]
            for ref in chosen:
                refs.setdefault(ref.name, ref)
        if not refs:
            raise UpstreamError(f"no checkpoint selected ({self._where()} is empty)")
        return list(refs.values())


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())


def write_registry(path: str | os.PathLike, refs: Iterable[CheckpointRef]) -> Path:
    """Write the registry atomically; paths are stored relative to its directory."""
    path = Path(path)
    base = path.parent
    records = [{**dataclasses.asdict(ref), "checkpoint": _relative(ref.checkpoint, base),
                "config": _relative(ref.config, base)} for ref in refs]
    atomic_write_text(path, json.dumps({"version": FORMAT_VERSION, "upstreams": records}, indent=2) + "\n")
    return path


def read_registry(path: str | os.PathLike) -> Registry:
    """The registry in a file, with absolute paths."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise UpstreamError(f"{path} has format {version}, not {FORMAT_VERSION}: register the checkpoints again "
                                "(recipe stage 6, or `python -m espnet_hubert_ae.bin.upstreams register`)")
        refs = [
            CheckpointRef(**{**r, "checkpoint": (path.parent / r["checkpoint"]).resolve(),
                             "config": (path.parent / r["config"]).resolve()})
            for r in data["upstreams"]
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise UpstreamError(f"cannot read the upstream registry {path}: {err!r}") from err
    return Registry(refs, path)


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


def open_registry(registry: str | os.PathLike | None = None) -> Registry:
    """The registry ``registry`` names, else the one in use (:func:`find_registry`); an empty
    one when there is none, whose name lookups say so."""
    path = Path(registry) if registry else find_registry()
    return read_registry(path) if path is not None else Registry()


# --- what hubert_ae_local is given ----------------------------------------------------------


def resolve_upstream(name_or_path: str | os.PathLike | None, config: str | os.PathLike | None = None,
                     registry: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(checkpoint, config) for a checkpoint path or a registered name.

    The config is ``config`` when given, else the registered one or ``config.yaml`` beside the
    checkpoint. A checkpoint file is used without reading any registry.
    """
    if not name_or_path:
        raise UpstreamError("hubert_ae_local needs a checkpoint path or a registered name (path_or_url / -k)")
    candidate = Path(name_or_path)
    if candidate.is_file():
        ref = CheckpointRef.for_file(candidate, config)
    else:
        ref = open_registry(registry).ref(name_or_path, config)
    if not ref.checkpoint.is_file():
        raise UpstreamError(f"checkpoint {ref.checkpoint} does not exist")
    if not ref.config.is_file():
        raise UpstreamError(
            f"no config for checkpoint {ref.checkpoint}: {ref.config} does not exist (the ESPnet HuBERT "
            f"config.yaml must sit beside the .pth, or be given as config= / -g)")
    return ref.checkpoint, ref.config

"""The configs that ship with the package, and the one resolver of names and paths to them.

The package owns ``espnet_hubert_ae/conf/<kind>/<name>.yaml`` (the recipe's ``conf/`` links
there, and a wheel carries them), for three kinds: ``strategy`` (pretraining schedules),
``model`` (ESPnet HuBERT model configs) and ``asr`` (downstream templates). Every lookup of such
a config goes through :func:`resolve_preset`: a path to a YAML file is taken as it is, any
other value is the name of a shipped preset.

    resolve_preset("strategy", "progressive")            # .../espnet_hubert_ae/conf/strategy/progressive.yaml
    resolve_preset("model", "conf/model/my_model.yaml")  # that file
"""

from __future__ import annotations

import os
from pathlib import Path

PRESET_ROOT = Path(__file__).resolve().parents[1] / "conf"
PRESET_KINDS = ("strategy", "model", "asr")


class PresetError(ValueError):
    """A config name that is no shipped preset, or a config path that does not exist."""


def preset_dir(kind: str) -> Path:
    """The folder of the shipped configs of one kind."""
    if kind not in PRESET_KINDS:
        raise PresetError(f"unknown config kind {kind!r}; choose from {', '.join(PRESET_KINDS)}")
    return PRESET_ROOT / kind


def preset_names(kind: str) -> list[str]:
    """Names of the shipped configs of one kind, sorted."""
    return sorted(path.stem for path in preset_dir(kind).glob("*.yaml"))


def resolve_preset(kind: str, name_or_path: str | os.PathLike) -> Path:
    """The config file a name (shipped preset of ``kind``) or a path stands for.

    A value ending in ``.yaml``/``.yml``, or naming an existing file, is a path; anything else
    is a preset name. Either way the file must exist, or :class:`PresetError` says which
    presets there are.
    """
    directory = preset_dir(kind)
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise PresetError(f"{kind} config file not found: {path}")
        return path
    named = directory / f"{name_or_path}.yaml"
    if not named.is_file():
        raise PresetError(f"unknown {kind} '{name_or_path}': not a file, and not one of the presets in "
                          f"{directory}/ ({', '.join(preset_names(kind))})")
    return named

"""Factories for the ASR tests: a tiny pretraining checkpoint and a tiny spoken corpus."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from espnet_hubert_ae.utils.presets import resolve_preset

WORDS = "THE CAT SAT ON A MAT DOG RAN TO SEE BIG RED SUN IN SKY AND WE GO HOME NOW".split()


def _build_tiny_checkpoint(out_dir: Path, preset: str = "tiny") -> Path:
    """A randomly initialised ESPnet HuBERT checkpoint of a model preset, config beside it."""
    import torch
    import yaml
    from espnet2.tasks.hubert import HubertTask

    from espnet_hubert_ae.model.encoders import register_in_espnet

    register_in_espnet()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = [str(i) for i in range(20)]
    (out_dir / "tokens.txt").write_text("".join(f"{t}\n" for t in tokens))
    model_conf = yaml.safe_load(resolve_preset("model", preset).read_text())
    args = HubertTask.get_parser().parse_args(
        ["--output_dir", str(out_dir), "--token_list", str(out_dir / "tokens.txt"), "--num_classes", "20",
         "--input_size", "1", "--encoder", model_conf["encoder"], "--model", "torchaudio", "--normalize", "none"]
    )
    args.encoder_conf = model_conf["encoder_conf"]
    args.token_list = tokens
    torch.manual_seed(0)
    model = HubertTask.build_model(args)
    torch.save(model.state_dict(), out_dir / "model.pth")
    (out_dir / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    return out_dir / "model.pth"


@pytest.fixture(scope="session")
def asr_tiny_checkpoint(tmp_path_factory) -> Path:
    """Path of a tiny random HuBERT pretraining checkpoint (``model.pth``, ``config.yaml`` beside)."""
    return _build_tiny_checkpoint(tmp_path_factory.mktemp("asr_ckpt"))


@pytest.fixture(scope="session")
def asr_mel_tiny_checkpoint(tmp_path_factory) -> Path:
    """The same of the log-mel family (``mel_tiny`` preset)."""
    return _build_tiny_checkpoint(tmp_path_factory.mktemp("asr_mel_ckpt"), preset="mel_tiny")


def _speak(text: str, path: Path, speed: int) -> int:
    """Synthesise ``text`` with espeak-ng as 16 kHz mono 16-bit wav; returns its sample count."""
    subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(path) + ".tmp.wav", text.lower()], check=True)
    subprocess.run(["sox", str(path) + ".tmp.wav", "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    Path(str(path) + ".tmp.wav").unlink()
    import soundfile as sf

    return sf.info(str(path)).frames


@pytest.fixture(scope="session")
def asr_corpus(tmp_path_factory) -> dict[str, Path]:
    """Set name -> data directory of a tiny labelled espeak-ng corpus (random word strings)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to synthesise the test corpus")
    from espnet_hubert_ae.data.datadir import Utterance, write_datadir

    root = tmp_path_factory.mktemp("asr_corpus")
    rng = random.Random(7)
    sets = {}
    for name, count in (("train_pretrain", 16), ("train_10min", 12), ("dev_clean", 4), ("test_clean", 4)):
        utts = []
        for i in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
            utt_id = f"{name}-{i:03d}"
            wav = root / "audio" / f"{utt_id}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            samples = _speak(text, wav, rng.randint(150, 190))
            utts.append(Utterance(utt_id, str(wav), f"spk{i % 2}", samples, text))
        sets[name] = write_datadir(root / name, utts)
    return sets


@pytest.fixture
def quick_config(tmp_path):
    """Factory: a shipped ASR template shortened to a few training steps, written to tmp."""
    import yaml

    def make(name: str, **overrides) -> Path:
        config = yaml.safe_load(resolve_preset("asr", name).read_text())
        config.update(overrides)
        path = tmp_path / f"quick_{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return make



"""ctypes binding to libespeak-ng: speech synthesis with the sample position of every phoneme.

The library is initialised in synchronous mode with phoneme events
(``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_PHONEME_EVENTS)``);
its synth callback receives the audio (16-bit, 22050 Hz) and a list of events. Each phoneme
event carries the phoneme's mnemonic, its first sample and the text position of the word it was
produced for; that is what the corpus' phone and word timings are made of.

espeak-ng keeps wave-generator state between calls in function statics (pitch flutter phase,
Klatt noise, echo), so a synthesis depends on everything synthesised before it in the process.
``Espeak.isolated`` therefore runs each synthesis in a forked child of a process that has
initialised the library but never synthesised: every utterance starts from the same state and
its audio is identical whatever the order, the number of jobs or the other utterances.

The struct layout below is ``espeak_EVENT`` of ``espeak-ng/speak_lib.h`` (espeak-ng 1.49-1.52).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import pickle
import select
import signal
import threading
from typing import Any, Callable

import numpy as np

LIBRARY = "libespeak-ng.so.1"
SAMPLE_RATE = 22050  # what espeak-ng's voices synthesise at

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a sentence pause after the text, so the last phoneme is not cut short
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_PHONEME_SEPARATOR = ord("|")


class EspeakError(RuntimeError):
    """libespeak-ng refused a request or failed."""


class EspeakNotInstalled(EspeakError, FileNotFoundError):
    """libespeak-ng cannot be loaded (a user error: install espeak-ng)."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word in the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # sample index in the output
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class PhonemeEvent:
    """A phoneme starting at ``sample``, produced for the word at ``text_position`` (1-based)."""

    sample: int
    text_position: int
    name: str


@dataclasses.dataclass(frozen=True)
class WordEvent:
    sample: int
    text_position: int
    length: int


@dataclasses.dataclass
class Synthesis:
    """The audio (int16, 22050 Hz) of one text and the events that came with it."""

    audio: np.ndarray
    phonemes: list[PhonemeEvent]
    words: list[WordEvent]
    sample_rate: int = SAMPLE_RATE


def load_library() -> ctypes.CDLL:
    """Load libespeak-ng, or fail saying how to install it."""
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as err:
        raise EspeakNotInstalled(
            f"cannot load {LIBRARY} ({err}): the built-in corpus is synthesised with espeak-ng; "
            "install it with `apt-get install espeak-ng` (Debian/Ubuntu)"
        ) from None
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    return lib


def library_version() -> str:
    """espeak-ng's version ("1.51"): audio changes with it, so corpus stamps record it."""
    return load_library().espeak_Info(None).decode()


class Espeak:
    """The process' espeak-ng engine (the library holds one global synthesiser per process)."""

    _instance: Espeak | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._lib = load_library()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        if rate != SAMPLE_RATE:
            raise EspeakError(f"espeak_Initialize returned {rate}, expected a {SAMPLE_RATE} Hz synthesiser")
        self._chunks: list[bytes] = []
        self._phonemes: list[PhonemeEvent] = []
        self._words: list[WordEvent] = []
        self._callback = _SynthCallback(self._on_audio)  # kept referenced: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)
        # Loading the English dictionary now spares every forked child from loading it again.
        self.set_voice("en")

    @classmethod
    def get(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", errors="replace")
                self._phonemes.append(PhonemeEvent(event.sample, event.text_position, name))
            elif event.type == _EVENT_WORD:
                self._words.append(WordEvent(event.sample, event.text_position, event.length))
            i += 1
        return 0  # 0 = continue synthesising

    def set_voice(self, name: str) -> None:
        if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {name!r} (see `espeak-ng --voices=en` and `--voices=variant`)")

    def synthesize(self, text: str, voice: str, *, rate: int, pitch: int, pitch_range: int) -> Synthesis:
        """Synthesise ``text`` in this process (the result depends on earlier calls; see ``isolated``)."""
        self.set_voice(voice)
        settings = ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100))
        for parameter, value in settings:
            if self._lib.espeak_SetParameter(parameter, value, 0) != 0:
                raise EspeakError(f"espeak-ng refused parameter {parameter} = {value} for voice {voice!r}")
        self._chunks, self._phonemes, self._words = [], [], []
        data = text.encode("utf-8") + b"\0"
        status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        if status != 0:
            raise EspeakError(f"espeak_Synth failed with status {status} on {text!r} (voice {voice!r})")
        audio = np.frombuffer(b"".join(self._chunks), dtype=np.int16).copy()
        return Synthesis(audio, self._phonemes, self._words)

    def phoneme_counts(self, words: list[str], voice: str) -> list[int]:
        """How many phonemes espeak-ng gives each word said on its own (used to split merged words)."""
        self.set_voice(voice)
        return [len(self._phonemes_of(word)) for word in words]

    def _phonemes_of(self, word: str) -> list[str]:
        buffer = ctypes.create_string_buffer(word.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        phonemes: list[str] = []
        while pointer.value:
            chunk = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEME_SEPARATOR << 8)
            if not chunk:
                break
            for name in chunk.decode("utf-8", errors="replace").replace(" ", "|").split("|"):
                name = name.lstrip("',%=")  # stress marks are not phonemes
                if name and not name.startswith("_"):
                    phonemes.append(name)
        return phonemes

    def isolated(self, func: Callable[..., Any], *args: Any, timeout: float = 120.0) -> Any:
        """Run ``func(self, *args)`` in a forked child, from the engine's pristine state; return its result.

        Exceptions raised by ``func`` are re-raised here. The child must not outlive ``timeout``.
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: compute, send the pickled outcome, leave without running any cleanup
            os.close(read_fd)
            code = 0
            try:
                try:
                    outcome = (True, func(self, *args))
                except BaseException as err:  # noqa: BLE001 - sent to the parent, which re-raises it
                    outcome = (False, err)
                with os.fdopen(write_fd, "wb") as pipe:
                    pickle.dump(outcome, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        os.close(write_fd)
        try:
            payload = _read_all(read_fd, timeout, pid)
        finally:
            os.close(read_fd)
            os.waitpid(pid, 0)
        if not payload:
            raise EspeakError(f"the espeak-ng synthesis process {pid} died without a result")
        ok, value = pickle.loads(payload)
        if not ok:
            raise value
        return value


def _read_all(fd: int, timeout: float, pid: int) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise EspeakError(f"espeak-ng synthesis gave no result within {timeout:.0f} s (process {pid} killed)")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)

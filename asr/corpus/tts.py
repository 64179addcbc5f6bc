"""Speech synthesis engines of the embedded corpus: eSpeak NG, flite and Festival, one API.

A `Voice` is one synthetic speaker: engine, voice name, speaking rate and pitch. `synthesize`
returns int16 samples and their sample rate. Engines:

- `espeak`: libespeak-ng from `espeakng-loader`, through ctypes (no system package). Voices such
  as `en-us`, `en-GB-x-rp`, with `+f3`/`+m1`... variants; rate in words per minute, pitch 0-100.
  eSpeak keeps state between syntheses, so callers synthesise each speaker in a fresh process
  forked from one that initialised eSpeak but never synthesised (see asr.corpus.synth).
- `flite`: the Debian `flite` command (`flite -voice kal -t TEXT -o out.wav`); rate as a
  duration stretch (`duration_stretch`), pitch as the F0 target mean in Hz (`int_f0_target_mean`).
- `festival`: the Debian `festival` command in batch mode, one process per list of texts;
  voices from festvox packages (`ked_diphone` from festvox-kdlpc16k, `cmu_us_slt_arctic_hts`
  from festvox-us-slt-hts); rate as `Duration_Stretch`.

Missing programs or voices raise `EngineError` naming the Debian package or the voice.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENGINES = ("espeak", "flite", "festival")
# Debian packages that provide each external engine and its voices.
APT_PACKAGES = {"flite": "flite", "festival": "festival", "sox": "sox",
                "ked_diphone": "festvox-kdlpc16k", "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}


class EngineError(RuntimeError):
    """A synthesis engine or voice is missing, or produced no audio."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. `rate`: eSpeak words/min, or a duration stretch (1.0 = normal) for
    flite and Festival; `pitch`: eSpeak 0-100, or the flite F0 target in Hz (0: the voice's own);
    `pitch_range`, `word_gap`: eSpeak only (0-100, units of 10 ms)."""

    engine: str
    name: str
    rate: float
    pitch: float = 0.0
    pitch_range: int = 50
    word_gap: int = 0

    def describe(self) -> str:
        return f"{self.engine}:{self.name} rate {self.rate:g} pitch {self.pitch:g}"


def require_program(name: str) -> str:
    """Path of `name` on PATH, or EngineError naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        raise EngineError(f"'{name}' is not on PATH: install the Debian package "
                          f"'{APT_PACKAGES.get(name, name)}' (apt-get install {APT_PACKAGES.get(name, name)})")
    return path


# --------------------------------------------------------------------------------------- eSpeak NG
_ESPEAK = None
_BUF: list[np.ndarray] = []
_CALLBACK_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                               ctypes.c_void_p)


def _collect(wav, n, _events):  # called by eSpeak with int16 samples
    if n > 0:
        _BUF.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


_CALLBACK = _CALLBACK_T(_collect)


def espeak_init() -> int:
    """Load and initialise libespeak-ng (synchronous output); returns its sample rate (Hz)."""
    global _ESPEAK
    if _ESPEAK is None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        sr = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if sr <= 0:
            raise EngineError("espeak_Initialize failed (espeakng-loader's library or data)")
        lib.espeak_SetSynthCallback(_CALLBACK)
        _ESPEAK = (lib, sr)
    return _ESPEAK[1]


def _espeak(text: str, voice: Voice, seed: int) -> tuple[np.ndarray, int]:
    sr = espeak_init()
    lib = _ESPEAK[0]
    lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
    ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
        raise EngineError(f"eSpeak NG has no voice '{voice.name}'")
    for param, value in ((1, voice.rate), (3, voice.pitch), (4, voice.pitch_range), (7, voice.word_gap)):
        lib.espeak_SetParameter(param, int(value), 0)
    _BUF.clear()
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
    lib.espeak_Synchronize()
    samples = np.concatenate(_BUF) if _BUF else np.zeros(0, np.int16)
    return samples, sr


# --------------------------------------------------------------------------------------- flite
_FLITE_VOICES: set[str] | None = None


def flite_voices() -> set[str]:
    """Voices the installed flite has built in (`flite -lv`)."""
    global _FLITE_VOICES
    if _FLITE_VOICES is None:
        out = subprocess.run([require_program("flite"), "-lv"], capture_output=True, text=True,
                             check=True).stdout
        _FLITE_VOICES = set(out.split(":", 1)[-1].split())
    return _FLITE_VOICES


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="int16", always_2d=True)
    return x[:, 0].copy(), int(sr)


def _flite(text: str, voice: Voice, tmp: Path) -> tuple[np.ndarray, int]:
    out = tmp / "flite.wav"
    cmd = [require_program("flite"), "-voice", voice.name, "--setf", f"duration_stretch={voice.rate:g}"]
    if voice.pitch:
        cmd += ["--setf", f"int_f0_target_mean={voice.pitch:g}"]
    proc = subprocess.run(cmd + ["-t", text, "-o", str(out)], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise EngineError(f"flite failed for voice '{voice.name}': {proc.stderr.strip()[-300:]}")
    return _read_wav(out)


# --------------------------------------------------------------------------------------- Festival
def festival_voices() -> set[str]:
    """Festival voices installed under /usr/share/festival/voices/<language>/<voice>."""
    root = Path("/usr/share/festival/voices")
    return {p.name for p in root.glob("*/*") if p.is_dir()} if root.exists() else set()


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(texts: list[str], voice: Voice, tmp: Path) -> list[tuple[np.ndarray, int]]:
    lines = [f"(voice_{voice.name})", f"(Parameter.set 'Duration_Stretch {voice.rate:g})"]
    for i, text in enumerate(texts):
        lines.append(f"(utt.save.wave (SynthText {_scheme_string(text)}) \"{tmp / f'{i}.wav'}\" 'riff)")
    script = tmp / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([require_program("festival"), "-b", str(script)], capture_output=True, text=True)
    missing = [i for i in range(len(texts)) if not (tmp / f"{i}.wav").exists()]
    if proc.returncode != 0 or missing:
        raise EngineError(f"festival failed for voice '{voice.name}' ({len(missing)} of {len(texts)} "
                          f"texts not synthesised): {(proc.stderr or proc.stdout).strip()[-300:]}")
    return [_read_wav(tmp / f"{i}.wav") for i in range(len(texts))]


# --------------------------------------------------------------------------------------- API
def check_voice(voice: Voice) -> None:
    """Raise EngineError if the engine's program or the voice is missing (before any work)."""
    if voice.engine == "espeak":
        espeak_init()
        return  # eSpeak voices are checked when selected (fresh process per speaker)
    if voice.engine == "flite":
        if voice.name not in flite_voices():
            raise EngineError(f"flite has no voice '{voice.name}' (it has: {' '.join(sorted(flite_voices()))})")
        return
    if voice.engine == "festival":
        require_program("festival")
        if voice.name not in festival_voices():
            pkg = APT_PACKAGES.get(voice.name)
            hint = f": install the Debian package '{pkg}'" if pkg else ""
            raise EngineError(f"festival has no voice '{voice.name}'{hint} "
                              f"(installed: {' '.join(sorted(festival_voices())) or 'none'})")
        return
    raise EngineError(f"unknown synthesis engine '{voice.engine}' (known: {', '.join(ENGINES)})")


def synthesize_many(texts: list[str], voice: Voice, seeds: list[int]) -> list[tuple[np.ndarray, int]]:
    """Synthesise each text with `voice`: a list of (int16 samples, sample rate).

    `seeds` seed eSpeak's noise source per text (breathy variants); the other engines are
    deterministic. A text that gives no samples comes back as an empty array."""
    if voice.engine == "espeak":
        return [_espeak(t, voice, s) for t, s in zip(texts, seeds)]
    with tempfile.TemporaryDirectory(prefix="tts-") as d:
        if voice.engine == "flite":
            return [_flite(t, voice, Path(d)) for t in texts]
        if voice.engine == "festival":
            return _festival_batch(texts, voice, Path(d))
    raise EngineError(f"unknown synthesis engine '{voice.engine}' (known: {', '.join(ENGINES)})")

"""Telephone channel of the embedded corpus: room, noise, band limit, level and codec.

`telephone_channel(speech, sr_in, cfg, rng)` takes clean int16 speech at any rate and returns
int16 samples at `cfg.sample_rate` (8 kHz) plus a record of what was applied. In order:
1. resampling to 8 kHz and leading/trailing silence;
2. with probability `reverb_prob`, a simulated shoebox room (pyroomacoustics' image method,
   RT60 drawn from `rt60_s`), output shifted by the direct-path delay so it stays time-aligned
   with the text (as Kaldi's wav-reverberate --shift-output does);
3. the telephone band (4th-order Butterworth band-pass, `band_hz`, 300-3400 Hz);
4. speech level (`level_dbfs`) and additive noise of a drawn type at an SNR drawn from
   `snr_db` (measured on active speech): white, pink, brown (1/f^2), mains hum with harmonics,
   or speech-shaped noise, all synthesised (no noise corpus ships);
5. a codec on part of the data: 8-bit G.711 mu-law (`mulaw_prob`) or GSM 06.10 full rate
   through sox (`gsm_prob`, the Debian `sox` package), else 16-bit linear.
Every draw comes from `rng`, so a seeded generator gives identical audio.
"""

from __future__ import annotations

import subprocess
from math import gcd

import numpy as np

NOISE_TYPES = ("white", "pink", "brown", "hum", "speech_shaped")


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent, n samples, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return x / (x.std() + 1e-12)


def make_noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of synthetic noise of type `kind` (one of NOISE_TYPES), unit variance."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _coloured(rng, n, 1.0)
    elif kind == "brown":
        x = _coloured(rng, n, 2.0)
    elif kind == "hum":
        t = np.arange(n) / sr
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, 12)) + 0.1 * rng.standard_normal(n)
    elif kind == "speech_shaped":  # long-term speech spectrum: ~flat to 500 Hz, then -9 dB/octave
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / sr)
        spec = spec / np.sqrt(1.0 + (f / 500.0) ** 3)
        x = np.fft.irfft(spec, n)
    else:
        raise ValueError(f"unknown noise type '{kind}' (known: {', '.join(NOISE_TYPES)})")
    x = np.asarray(x, dtype=np.float64)
    return x / (x.std() + 1e-12)


def reverberate(x: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """`x` (float, samples) played in a random shoebox room with reverberation time `rt60` (s)
    and picked up by one microphone; same length, aligned to the direct path."""
    import pyroomacoustics as pra

    dims = rng.uniform([3.0, 3.0, 2.4], [9.0, 7.0, 3.6])
    e_abs, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(e_abs), max_order=min(int(max_order), 10))
    src = rng.uniform(0.5, dims - 0.5)
    mic = rng.uniform(0.5, dims - 0.5)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    delay = int(np.argmax(np.abs(rir)))
    y = np.convolve(x, rir)[delay:delay + len(x)]
    return y * (np.abs(x).max() / (np.abs(y).max() + 1e-12))


def mulaw(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """8-bit mu-law encode then decode (x in [-1, 1])."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def gsm(x16: np.ndarray, sr: int) -> np.ndarray:
    """int16 samples at 8 kHz through GSM 06.10 full-rate encode + decode (sox); same length."""
    from asr.corpus.tts import require_program

    sox = require_program("sox")
    raw = ["-t", "raw", "-r", str(sr), "-e", "signed", "-b", "16", "-c", "1"]
    enc = subprocess.run([sox, *raw, "-", "-t", "gsm", "-"], input=x16.astype("<i2").tobytes(),
                         capture_output=True, check=True).stdout
    dec = subprocess.run([sox, "-t", "gsm", "-r", str(sr), "-c", "1", "-", *raw, "-"], input=enc,
                         capture_output=True, check=True).stdout
    y = np.frombuffer(dec, dtype="<i2").astype(np.int16)
    out = np.zeros_like(x16)
    out[:min(len(y), len(x16))] = y[:len(x16)]
    return out


def telephone_channel(speech: np.ndarray, sr_in: int, cfg, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """int16 speech at `sr_in` -> (int16 samples at cfg.sample_rate, {snr_db, noise, rt60, codec}).

    `cfg` needs: sample_rate, lead_silence_s, trail_silence_s, band_hz, level_dbfs, snr_db,
    noise_types, reverb_prob, rt60_s, mulaw_prob, gsm_prob (see asr.corpus.synth.CorpusConfig)."""
    from scipy.signal import butter, resample_poly, sosfilt

    sr = cfg.sample_rate
    x = speech.astype(np.float64) / 32768.0
    g = gcd(sr, sr_in)
    x = resample_poly(x, sr // g, sr_in // g)
    lead = np.zeros(int(rng.uniform(*cfg.lead_silence_s) * sr))
    trail = np.zeros(int(rng.uniform(*cfg.trail_silence_s) * sr))
    x = np.concatenate([lead, x, trail])
    info: dict = {"rt60": 0.0}
    if rng.random() < cfg.reverb_prob:
        info["rt60"] = round(float(rng.uniform(*cfg.rt60_s)), 3)
        x = reverberate(x, sr, info["rt60"], rng)
    sos = butter(4, [cfg.band_hz[0], cfg.band_hz[1]], btype="bandpass", fs=sr, output="sos")
    x = sosfilt(sos, x)
    active = np.abs(x) > 0.05 * np.abs(x).max()
    speech_power = float(np.mean(x[active] ** 2)) if active.any() else float(np.mean(x ** 2))
    level = 10 ** (rng.uniform(*cfg.level_dbfs) / 20)
    x = x * (level / np.sqrt(speech_power + 1e-20))
    info["noise"] = str(cfg.noise_types[int(rng.integers(len(cfg.noise_types)))])
    info["snr_db"] = round(float(rng.uniform(*cfg.snr_db)), 2)
    noise = sosfilt(sos, make_noise(info["noise"], len(x), sr, rng))
    noise *= np.sqrt(level ** 2 / 10 ** (info["snr_db"] / 10) / (np.mean(noise ** 2) + 1e-20))
    y = np.clip(x + noise, -1.0, 1.0)
    u = rng.random()
    if u < cfg.mulaw_prob:
        info["codec"] = "mulaw"
        y = mulaw(y)
    elif u < cfg.mulaw_prob + cfg.gsm_prob:
        info["codec"] = "gsm"
    else:
        info["codec"] = "pcm"
    y16 = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    if info["codec"] == "gsm":
        y16 = gsm(y16, sr)
    return y16, info

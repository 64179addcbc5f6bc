"""Reading one wav.scp entry (a file, or Kaldi's `cmd |` pipe) into samples, with the checks
Kaldi's tools make: truncated WAV data, channel count, empty audio; pipes logged or refused.

    samples, rate = read_wav_entry("/path/utt.wav")        # (samples,) float32 in [-1, 1], Hz
    read_wav_entry("sox in.sph -t wav - |", allow_pipes=False)   # DataDirError: refused
"""

from __future__ import annotations

import io
import logging
import os
import shlex
import struct
import subprocess
from pathlib import Path

import numpy as np

log = logging.getLogger("asr.corpus.datadir")


class DataDirError(ValueError):
    """A data dir problem; the message names the file and the offending id."""


def is_pipe(entry: str) -> bool:
    """True when a wav.scp value is a shell command whose stdout is the audio (`cmd |`)."""
    return entry.rstrip().endswith("|")


# WAV data-chunk sizes that mean "unknown" (a writer that could not seek back, e.g. sox to a pipe)
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)
_UNKNOWN_WAV_SIZE_MIN = 0x7FFF0000


def wav_truncation(head: bytes, total_size: int) -> tuple[int, int, int] | None:
    """(declared data bytes, bytes present, bytes per sample frame) when a RIFF/WAVE file of
    `total_size` bytes whose first bytes are `head` holds less audio than its header declares;
    None when it is complete, not a WAV, or its header gives no usable size."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 1
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"fmt " and pos + 22 <= len(head):
            block_align = max(1, struct.unpack("<H", head[pos + 20:pos + 22])[0])
        if cid == b"data":
            if size in _UNKNOWN_WAV_SIZES or size >= _UNKNOWN_WAV_SIZE_MIN:
                return None
            present = total_size - (pos + 8)
            return (size, present, block_align) if present < size else None
        pos += 8 + size + (size & 1)
    return None


def _check_truncation(name: str, head: bytes, total_size: int, sample_rate: int | None) -> None:
    cut = wav_truncation(head, total_size)
    if cut is None:
        return
    declared, present, align = cut
    msg = f"{name}: truncated WAV: its header declares {declared // align} samples"
    if sample_rate:
        msg += (f" ({declared // align / sample_rate:.3f} s) but the file holds "
                f"{present // align} ({present // align / sample_rate:.3f} s)")
    else:
        msg += f" but the file holds {present // align}"
    raise DataDirError(msg)


def read_wav_entry(entry: str, *, channel: int | None = None, allow_pipes: bool = True,
                   name: str | None = None) -> tuple[np.ndarray, int]:
    """Audio of a wav.scp value (a path, or a `command |` writing a wav to stdout).

    Returns (float32 samples in [-1, 1], sample rate). Multi-channel audio is an error unless
    `channel` (0-based) picks one (one-channel audio is taken as it is). A WAV holding fewer
    samples than its header declares is an error. Each command is logged; `allow_pipes=False`
    refuses commands. Raises DataDirError naming `name` (the recording id, if given) and the
    entry when the audio cannot be used.
    """
    import soundfile as sf

    what = f"recording '{name}' ({entry})" if name else f"'{entry}'"
    try:
        if is_pipe(entry):
            if not allow_pipes:
                raise DataDirError(f"{what}: wav.scp commands are refused (--no-pipes / "
                                   "allow_pipes: false)")
            log.info("wav.scp command%s: %s", f" for recording '{name}'" if name else "",
                     entry.rstrip()[:-1].strip())
            proc = subprocess.run(entry.rstrip()[:-1], shell=True, capture_output=True, check=True)
            _check_truncation(what, proc.stdout[:65536], len(proc.stdout), None)
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        else:
            with open(entry, "rb") as f:
                head = f.read(4096)
            data, sr = sf.read(entry, dtype="float32", always_2d=True)
            _check_truncation(what, head, os.path.getsize(entry), sr)
    except DataDirError:
        raise
    except subprocess.CalledProcessError as e:
        raise DataDirError(f"{what}: command failed: {e.stderr.decode(errors='replace')[-300:]}"
                           ) from None
    except Exception as e:  # soundfile raises several types for corrupt files
        raise DataDirError(f"{what}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise DataDirError(f"{what}: empty audio (0 samples)")
    if data.shape[1] > 1 and channel is None:
        raise DataDirError(f"{what}: {data.shape[1]} channels; Kaldi features take one: choose "
                           "it with the feature option `channel` (0-based), or a wav.scp "
                           "command that extracts it")
    ch = 0 if channel is None or data.shape[1] == 1 else channel
    if not 0 <= ch < data.shape[1]:
        raise DataDirError(f"{what}: channel {ch} asked for, the audio has {data.shape[1]}")
    return np.ascontiguousarray(data[:, ch]), int(sr)


def _entry_files(entry: str) -> list[str]:
    """Audio file paths mentioned in a wav.scp value (the path, or file-like pipe arguments)."""
    if not is_pipe(entry):
        return [entry]
    toks = shlex.split(entry.rstrip()[:-1])
    return [t for t in toks[1:] if Path(t).suffix.lower() in (".wav", ".sph", ".flac")]

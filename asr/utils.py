"""Small shared helpers: logging set-up, atomic file writes, Kaldi text maps, seeding."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def setup_logging(level: int = logging.INFO, log_file: str | os.PathLike | None = None) -> None:
    """One log format for every `python -m asr.*` entry point: stderr, and with `log_file`
    (Kaldi's `<dir>/log/<step>.log`) also that file, appended to (its dir is created)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file = Path(log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S", force=True,
                        handlers=handlers)
    if log_file is not None:
        logging.getLogger(__name__).info("logging to %s", log_file)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    A crash leaves either the old file or none, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_utf8_text(path: str | os.PathLike) -> str:
    """Text of a Kaldi text file, strictly UTF-8 without a byte-order mark (CRLF kept).

    Raises ValueError naming the file, line and byte offset of a BOM or an invalid byte.
    """
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValueError(f"{path}:1: starts with a UTF-8 byte-order mark (bytes ef bb bf at byte "
                         "offset 0); Kaldi text files have none: remove it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        lineno = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}:{lineno}: byte 0x{data[e.start]:02x} at byte offset {e.start} "
                         f"(column {e.start - line_start + 1}) is not valid UTF-8 ({e.reason}); "
                         "Kaldi text files must be UTF-8") from None


def read_kaldi_map(path: str | os.PathLike, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi `key rest-of-line` file (text, utt2spk, wav.scp, ...) into a dict.

    Raises ValueError naming the file and line on a duplicate key, a missing value, a BOM or
    a byte that is not UTF-8. CRLF line ends are accepted.
    """
    out: dict[str, str] = {}
    # one strict decode: a BOM or a non-UTF-8 byte is an error naming the line and offset
    for lineno, line in enumerate(read_utf8_text(path).split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            raise ValueError(f"{path}:{lineno}: key '{key}' has no value")
        if key in out:
            raise ValueError(f"{path}:{lineno}: duplicate key '{key}'")
        out[key] = value
    return out


def write_kaldi_map(path: str | os.PathLike, mapping: dict[str, str]) -> None:
    """Write a Kaldi `key value` file sorted by key (C locale order), atomically."""
    lines = [f"{k} {mapping[k]}".rstrip() + "\n" for k in sorted(mapping)]
    atomic_write_text(path, "".join(lines))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (if imported) RNGs."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def lock_dir(out: str | os.PathLike, busy: str, hint: str):
    """Exclusive lock on `<out>/.lock`, held by the returned open file (the OS frees it when the
    process ends, also on a kill). A second holder fails at once with RuntimeError
    "<out>: <busy> (it holds <out>/.lock); <hint>" instead of writing into the same dir."""
    import fcntl

    lock = Path(out) / ".lock"
    f = open(lock, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RuntimeError(f"{out}: {busy} (it holds {lock}); {hint}") from None
    return f

"""Running NIST SCTK's `sclite` binary itself: trn pairs, or STM + CTM the way hubscr.pl runs it.

`find_tool("sclite")` looks on PATH, then in Debian's `/usr/lib/sctk/bin` (package `sctk`).
Per-utterance counts are read from sclite's SGML alignment output.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger("asr.score")

SCTK_DIRS = ("/usr/lib/sctk/bin", "/usr/local/lib/sctk/bin")
SCLITE_FLAGS = ("-F", "-D")  # fragments and optionally deletable words scored as hubscr.pl does


def find_tool(name: str) -> str:
    """Path of an SCTK tool: PATH first, then Debian's sctk dir; a clear error if absent."""
    found = shutil.which(name)
    if found:
        return found
    for d in SCTK_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise FileNotFoundError(f"{name}: not found on PATH nor in {', '.join(SCTK_DIRS)} "
                            "(install NIST SCTK: apt-get install sctk)")


_PATH_RE = re.compile(r'<PATH id="\((?P<id>[^)]*)\)"[^\n]*\n(?P<body>.*?)</PATH>', re.S)


def parse_sgml_counts(sgml: str) -> dict[str, tuple[int, int, int, int]]:
    """sclite SGML -> {utterance id: (C, S, D, I)} (the id inside `(...)`)."""
    out = {}
    for m in _PATH_RE.finditer(sgml):
        body = m.group("body").strip()
        evals = [tok[0] for tok in body.split(":")] if body else []
        out[m.group("id")] = (evals.count("C"), evals.count("S"), evals.count("D"), evals.count("I"))
    return out


def trn_counts(refs: dict[str, str], hyps: dict[str, str]) -> dict[str, tuple[int, int, int, int]]:
    """Score `utt -> text` pairs with `sclite -F -D` in trn mode; per-utterance (C, S, D, I).

    Utterances are renamed `(uN_N)` for sclite (its ids are `speaker_utt`); text is passed as is
    (parentheses mark optionally deletable words, `{ a / b }` alternatives)."""
    sclite = find_tool("sclite")
    keys = sorted(refs)
    names = {k: f"u{i}_{i}" for i, k in enumerate(keys)}
    with tempfile.TemporaryDirectory(prefix="sclite_") as tmp:
        ref_f, hyp_f = Path(tmp) / "ref.trn", Path(tmp) / "hyp.trn"
        ref_f.write_text("".join(f"{refs[k]} ({names[k]})\n" for k in keys))
        hyp_f.write_text("".join(f"{hyps.get(k, '')} ({names[k]})\n" for k in keys))
        proc = subprocess.run([sclite, "-r", str(ref_f), "trn", "-h", str(hyp_f), "trn", "-i", "rm",
                               *SCLITE_FLAGS, "-o", "sgml", "stdout", "-f", "0"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{sclite} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    got = parse_sgml_counts(proc.stdout)
    back = {v: k for k, v in names.items()}
    return {back[i]: c for i, c in got.items()}


def run_sclite(ref: Path, hyp: Path, out_dir: Path, name: str, stm: bool) -> Path:
    """Score one hypothesis file with the real sclite into `out_dir` (sum/rsum/pra/dtl/sgml reports,
    as hubscr.pl asks for): STM + CTM when `stm`, else trn (Kaldi text converted). Returns the
    `.sys` report."""
    sclite = find_tool("sclite")
    out_dir.mkdir(parents=True, exist_ok=True)
    if stm:
        args = ["-r", str(ref), "stm", "-h", str(hyp), "ctm", name]
    else:
        from asr.utils import read_kaldi_map

        def trn(src: Path, dst: Path) -> None:
            m = read_kaldi_map(src, allow_empty_value=True)
            dst.write_text("".join(f"{t} ({u})\n" for u, t in sorted(m.items())))

        trn(ref, out_dir / "ref.trn")
        trn(hyp, out_dir / f"{name}.trn")
        args = ["-r", str(out_dir / "ref.trn"), "trn", "-h", str(out_dir / f"{name}.trn"), "trn", name,
                "-i", "rm"]
    cmd = [sclite, *args, *SCLITE_FLAGS, "-o", "sum", "rsum", "sgml", "dtl", "pra", "-O", str(out_dir),
           "-n", name, "-f", "0"]
    logger.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{sclite} failed ({proc.returncode}) on {hyp}: {proc.stderr[-2000:]}")
    return out_dir / f"{name}.sys"


_SUM_RE = re.compile(r"\|\s*Sum(?:/Avg)?\s*\|\s*(?P<snt>\d+)\s+(?P<wrd>\d+)\s*\|"
                     r"\s*(?P<c>\d+)\s+(?P<s>\d+)\s+(?P<d>\d+)\s+"
                     r"(?P<i>\d+)\s+(?P<e>\d+)")


def score_with_sclite(ref: Path, hyps: list[Path], out_dir: Path, glm: Path | None = None) -> dict:
    """`asr.score --scorer sclite`: each hypothesis through the real sclite (STM refs need CTM
    hypotheses; with a GLM, hubscr.pl's filter is run first), totals from its `.raw` report into
    `DIR/wer.json`, `DIR/best_wer`; sclite's own reports in `DIR/<setting>/`."""
    import json

    from asr.score.result import parse_setting, setting_name
    from asr.utils import atomic_write_text

    stm = ref.suffix == ".stm" or ref.name == "stm"
    settings = {}
    for hyp in hyps:
        name = setting_name(hyp)
        d = out_dir / name
        d.mkdir(parents=True, exist_ok=True)
        if stm and hyp.suffix != ".ctm":
            raise ValueError(f"{hyp}: sclite scores an STM reference against a CTM hypothesis (*.ctm)")
        r, h = ref, hyp
        if stm and glm is not None:  # hubscr.pl's Hub5 English filters (GLM, hyphens) on both sides
            csrfilt = find_tool("csrfilt.sh")
            for src, dst, fmt, purpose in ((ref, d / "stm.filt", "stm", "ref"),
                                           (hyp, d / "hyp.ctm.filt", "ctm", "hyp")):
                with open(src) as fi, open(dst, "w") as fo:
                    subprocess.run([csrfilt, "-s", "-i", fmt, "-t", purpose, "-dh", str(glm)], stdin=fi, stdout=fo,
                                   check=True)
            r, h = d / "stm.filt", d / "hyp.ctm.filt"
        run_sclite(r, h, d, name, stm)
        raw = (d / f"{name}.raw").read_text()
        m = _SUM_RE.search(raw)
        if m is None:
            raise RuntimeError(f"{d / (name + '.raw')}: no Sum/Avg line in sclite's report")
        v = {k: int(x) for k, x in m.groupdict().items()}
        if v["wrd"] == 0:
            raise ValueError(f"{ref}: no reference words (WER would be 0/0)")
        settings[name] = {"wer": round(100.0 * v["e"] / v["wrd"], 4), "ref_words": v["wrd"], "sentences": v["snt"],
                          "corr": v["c"], "sub": v["s"], "del": v["d"], "ins": v["i"], "err": v["e"],
                          "hyp": str(hyp), "scorer": "sclite"} | parse_setting(name)
    best = min(settings, key=lambda k: (settings[k]["wer"], k))
    summary = {"ref": str(ref), "glm": str(glm) if glm else None, "scorer": "sclite", "settings": settings,
               **{k: v for k, v in settings[best].items() if k != "hyp"}, "best_setting": best}
    atomic_write_text(out_dir / "wer.json", json.dumps(summary, indent=2) + "\n")
    b = settings[best]
    atomic_write_text(out_dir / "best_wer", f"%WER {b['wer']:.2f} [ {b['err']} / {b['ref_words']}, {b['ins']} ins, "
                                            f"{b['del']} del, {b['sub']} sub ] {best} (sclite)\n")
    return summary

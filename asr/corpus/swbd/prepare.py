"""The whole stage-0 preparation (`prepare`) and its dry-run plan (`plan`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path


from asr.corpus.swbd import audio
from asr.corpus.swbd.audio import check_sph_readable, sph_audio_backend
from asr.corpus.swbd.layout import MANIFEST_PREFIX, Corpora, Layout, load_corpora, resolve_layout, transcript_problems
from asr.corpus.swbd.outputs import (drop_all_oov, split_dev, write_dict, write_eval2000_extras, write_kaldi_dir,
                                     write_manifests)
from asr.corpus.swbd.recipes import prepare_eval2000_lhotse, prepare_fisher_lhotse, prepare_swbd_lhotse

log = logging.getLogger(__name__)




def plan(c: Corpora, lay: Layout, data: Path) -> str:
    """Human-readable plan of what stage 0 reads and writes."""
    lines = [
        "stage 0 plan (Switchboard/Fisher/Hub5'00 data preparation):",
        f"  swbd      audio {c.swbd_audio} ({len(lay.swbd_sph)} .sph), "
        f"transcripts {c.swbd_transcripts} ({len(lay.swbd_trans)} *trans.text)",
        "  fisher    " + (f"{len(lay.fisher_partitions)} audio partitions in "
                          f"{' '.join(map(str, c.fisher_audio))}, {len(lay.fisher_trans_roots)} "
                          f"transcript dirs" if c.fisher_audio
                          else "not used (Switchboard-only training)"),
        f"  eval2000  audio {lay.eval_audio_root or c.eval2000_audio}, "
        f"transcripts {lay.eval_trans_root or c.eval2000_transcripts}",
        f"  reading .sph with {'sph2pipe' if audio.sph2pipe_available() else 'libsndfile (no sph2pipe on PATH)'}",
        f"  writes    {data}/manifests/{MANIFEST_PREFIX}_*_{{train,dev,eval2000}}.jsonl.gz, "
        f"{data}/train, " + (f"{data}/dev ({c.dev_conversations} swbd conversations), "
                             if c.dev_conversations else "") +
        f"{data}/eval2000 (+stm, glm, reco2file_and_channel), {data}/local/dict",
    ]
    return "\n".join(lines)


def prepare(config: str | os.PathLike, data: str | os.PathLike, nj: int = 1) -> None:
    """Run all of stage 0. Raises ValueError listing every missing/bad input."""
    t0 = time.time()
    c = load_corpora(config)
    data = Path(data)
    lay = resolve_layout(c)
    problems = lay.problems or transcript_problems(lay)
    if not problems:  # one file per corpus tells the coding
        firsts = lay.swbd_sph[:1] + [next((p / "audio").rglob("*.sph"), None)
                                     for p in lay.fisher_partitions[:1]]
        firsts.append(next((lay.eval_audio_root / "english").rglob("*.sph"), None))
        problems = check_sph_readable([x for x in firsts if x is not None])
    if problems:
        raise ValueError("stage 0 inputs are not usable:\n  " + "\n  ".join(problems))
    from lhotse import audio_backend

    backend = sph_audio_backend()
    log.info("reading .sph with lhotse backend %s", backend)
    old_env = os.environ.get("LHOTSE_AUDIO_BACKEND")
    os.environ["LHOTSE_AUDIO_BACKEND"] = backend  # for lhotse's worker processes too
    try:
        with audio_backend(backend):
            _prepare(c, lay, data, nj)
    finally:
        if old_env is None:
            os.environ.pop("LHOTSE_AUDIO_BACKEND", None)
        else:
            os.environ["LHOTSE_AUDIO_BACKEND"] = old_env
    log.info("stage 0 done in %.1fs", time.time() - t0)


def _prepare(c: Corpora, lay: Layout, data: Path, nj: int) -> None:
    from lhotse import RecordingSet, SupervisionSet

    recs, sups = prepare_swbd_lhotse(lay, c)
    if c.fisher_audio:
        frecs, fsups = prepare_fisher_lhotse(lay, data / "local" / "lhotse_fisher", nj)
        recs = RecordingSet.from_recordings(list(recs) + list(frecs))
        sups = SupervisionSet.from_segments(list(sups) + list(fsups))
    (trecs, tsups), (drecs, dsups) = split_dev(recs, sups, c.dev_conversations)
    erecs, esups = prepare_eval2000_lhotse(lay, data / "local" / "lhotse_eval2000")

    manifests = data / "manifests"
    vocab = write_dict(list(tsups) + list(dsups), data / "local" / "dict")
    tsups, dsups = (drop_all_oov(s, vocab, n) for s, n in ((tsups, "train"), (dsups, "dev")))
    sets = [("train", trecs, tsups), ("eval2000", erecs, esups)]
    if c.dev_conversations:
        sets.insert(1, ("dev", drecs, dsups))
    for name, r, s in sets:
        write_manifests(r, s, manifests, name)
        write_kaldi_dir(r, s, data / name)
        log.info("%s: %d recordings, %d utterances, %.1f h", name, len(r), len(s),
                 sum(x.duration for x in s) / 3600)
    write_eval2000_extras(lay, data / "eval2000")

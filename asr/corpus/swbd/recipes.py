"""lhotse's Switchboard, Fisher and eval2000 recipes run on the checked layouts (inputs linked as lhotse expects)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path


from asr.corpus.swbd_text import normalize_fisher, normalize_swbd
from asr.corpus.swbd.layout import Corpora, Layout
from asr.corpus.swbd.supervisions import renormalize, stm_supervisions

log = logging.getLogger(__name__)




# ------------------------------------------------------------------------- lhotse recipes

def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)


def _realpaths(recordings):
    """Point each recording at the real file (not the staging symlinks)."""
    for r in recordings:
        for src in r.sources:
            if src.type == "file":
                src.source = os.path.realpath(src.source)
    return recordings


def prepare_swbd_lhotse(lay: Layout, c: Corpora):
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_switchboard

    t0 = time.time()
    m = prepare_switchboard(c.swbd_audio, c.swbd_transcripts, output_dir=None,
                            omit_silence=True, absolute_paths=True)
    recs = m["recordings"]
    sups = renormalize(m["supervisions"], normalize_swbd, "swbd")
    log.info("swbd: %d recordings in %.1fs", len(recs), time.time() - t0)
    return RecordingSet.from_recordings(_realpaths(recs)), SupervisionSet.from_segments(sups)


def prepare_fisher_lhotse(lay: Layout, work: Path, nj: int):
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_fisher_english

    t0 = time.time()
    if work.exists():
        shutil.rmtree(work)  # lhotse reuses *_notfixed manifests found here: start clean
    trans_dirs = []
    for i, part in enumerate(lay.fisher_partitions):  # one dir of partitions, as lhotse walks it
        _link(part, work / "links" / "audio" / f"p{i:02d}")
    audio_dirs = [str(work / "links" / "audio")]
    for i, root in enumerate(lay.fisher_trans_roots):
        _link(root, work / "links" / f"trans{i}")
        trans_dirs.append(str(work / "links" / f"trans{i}"))
    m = prepare_fisher_english(work, work / "lhotse", audio_dirs=audio_dirs,
                               transcript_dirs=trans_dirs, absolute_paths=True, num_jobs=nj)
    recs = RecordingSet.from_recordings(_realpaths(list(m["recordings"])))
    sups = renormalize(m["supervisions"], normalize_fisher, "fisher")
    audio = sorted(x for part in lay.fisher_partitions for x in (part / "audio").rglob("*.sph"))
    lost = [str(x) for x in audio if x.stem not in recs]
    if lost:  # lhotse leaves out files sph2pipe fails on, and their transcripts with them
        log.warning("fisher: %d audio files could not be read and were left out with their "
                    "transcripts: %s%s", len(lost), " ".join(lost[:5]), " ..." if len(lost) > 5 else "")
    log.info("fisher: %d recordings in %.1fs", len(recs), time.time() - t0)
    shutil.rmtree(work)  # staging links and lhotse's intermediate manifests
    return recs, SupervisionSet.from_segments(sups)


def prepare_eval2000_lhotse(lay: Layout, work: Path):
    from lhotse import Recording, RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_eval2000

    t0 = time.time()
    if work.exists():
        shutil.rmtree(work)
    _link(lay.eval_audio_root, work / "LDC2002S09" / "hub5e_00")
    _link(lay.eval_trans_root, work / "LDC2002T43")
    try:
        m = prepare_eval2000(work, work / "lhotse", absolute_paths=True)
        recs = RecordingSet.from_recordings(_realpaths(list(m["recordings"])))
        log.info("eval2000: %d recordings, %d transcript segments from reference/english/*.txt "
                 "(the data dir follows the stm instead)", len(recs), len(m["supervisions"]))
    except Exception as e:  # its reference/english/*.txt parse is not what we use: go on
        log.warning("eval2000: lhotse's prepare_eval2000 failed (%s: %s); the data dir follows "
                    "the stm, so reading the audio headers directly", type(e).__name__, e)
        recs = RecordingSet.from_recordings(_realpaths(
            [Recording.from_file(x) for x in sorted((lay.eval_audio_root / "english").rglob("*.sph"))]))
    sups = SupervisionSet.from_segments(stm_supervisions(lay.stm, recs))
    shutil.rmtree(work)
    log.info("eval2000: done in %.1fs", time.time() - t0)
    return recs, sups

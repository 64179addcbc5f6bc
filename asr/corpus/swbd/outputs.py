"""Outputs of the preparation: manifests, Kaldi data dirs (wav.scp through sph2pipe), dict dir, dev split."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path


from asr.corpus.swbd_text import EXTRA_LEXICON
from asr.utils import atomic_write_text, write_kaldi_map
from asr.corpus.swbd import audio
from asr.corpus.swbd.layout import MANIFEST_PREFIX, Layout
from asr.corpus.swbd.supervisions import fix_stm

log = logging.getLogger(__name__)




# ------------------------------------------------------------------------- outputs

def write_manifests(recs, sups, manifest_dir: Path, set_name: str):
    """Write recordings, supervisions and cuts; return the CutSet."""
    from lhotse import CutSet

    manifest_dir.mkdir(parents=True, exist_ok=True)
    recs.to_file(manifest_dir / f"{MANIFEST_PREFIX}_recordings_{set_name}.jsonl.gz")
    sups.to_file(manifest_dir / f"{MANIFEST_PREFIX}_supervisions_{set_name}.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recs, supervisions=sups)
    cuts.to_file(manifest_dir / f"{MANIFEST_PREFIX}_cuts_{set_name}.jsonl.gz")
    return cuts


SPH2WAV = Path(__file__).resolve().parents[3] / "egs" / "swbd" / "local" / "sph2wav.py"


def sph_wav_entry(recording, channel: int | None) -> str:
    """wav.scp value for one channel of a SPHERE file: Kaldi's sph2pipe command when sph2pipe is
    installed, else `egs/swbd/local/sph2wav.py` (libsndfile; uncompressed SPHERE only)."""
    from asr.corpus.datadir import default_wav_entry

    src = recording.sources[0].source
    if audio.sph2pipe_available() or not src.lower().endswith(".sph") or channel is None:
        return default_wav_entry(recording, channel)
    return f"{sys.executable} {SPH2WAV} -c {channel + 1} {src} |"


def write_kaldi_dir(recs, sups, out_dir: Path) -> None:
    """Kaldi data dir via asr.corpus.datadir (+ reco2file_and_channel), then validated."""
    from asr.corpus import datadir

    dd, skipped = datadir.datadir_from_manifests(recs, sups, wav_entry=sph_wav_entry)
    datadir.write_datadir(dd, out_dir)
    r2fc = {}
    for rec_id in dd.wav_scp:  # sw02001-A -> sw02001 A (datadir names channels <rec>-A, -B)
        base, side = rec_id.rsplit("-", 1)
        r2fc[rec_id] = f"{base} {side}"
    write_kaldi_map(out_dir / "reco2file_and_channel", r2fc)
    datadir.validate_datadir(out_dir)
    log.info("%s: %d utterances written; skipped %s", out_dir, len(dd.text), skipped)


def write_dict(sups, out_dir: Path) -> set[str]:
    """Kaldi dict dir (asr.corpus.lexicon: CMUdict + noise/hesitation words) for the training
    words; returns the in-lexicon words (special words excluded)."""
    from collections import Counter

    from asr.corpus.lexicon import SPECIAL_WORDS, build_lexicon, write_dict_dir

    counts = Counter(w for s in sups for w in s.text.split())
    lex, oov = build_lexicon(counts, EXTRA_LEXICON)
    write_dict_dir(out_dir, lex, oov)
    n = sum(counts.values())
    log.info("dict %s: %d word types, %d in lexicon, %d OOV types (%d of %d tokens, %.2f%%: "
             "partial words and rare names; they map to <unk>)%s", out_dir, len(counts), len(lex),
             len(oov), sum(oov.values()), n, 100.0 * sum(oov.values()) / max(n, 1),
             (": " + " ".join(w for w, _ in oov.most_common(10))) if oov else "")
    return set(lex) - set(SPECIAL_WORDS)


def drop_all_oov(sups, vocab: set[str], name: str):
    """Training segments with no in-lexicon word (only fragments, <unk>, ...) teach nothing:
    drop them, counted and logged (the manifests and the data dir stay the same set)."""
    from lhotse import SupervisionSet

    keep = [s for s in sups if any(w in vocab for w in s.text.split())]
    dropped = [s.id for s in sups if not any(w in vocab for w in s.text.split())]
    if dropped:
        log.warning("%s: dropped %d segments whose words are all out of the lexicon: %s%s", name,
                    len(dropped), " ".join(dropped[:10]), " ..." if len(dropped) > 10 else "")
    return SupervisionSet.from_segments(keep)


def write_eval2000_extras(lay: Layout, out_dir: Path) -> None:
    """stm (with the two known fixes), glm (verbatim) for scoring."""
    atomic_write_text(out_dir / "stm", fix_stm(lay.stm.read_text(encoding="utf-8", errors="replace")))
    shutil.copyfile(lay.glm, out_dir / "glm")


def split_dev(recs, sups, n_conv: int):
    """Hold out the first `n_conv` Switchboard conversations (sorted ids) as dev."""
    from lhotse import RecordingSet, SupervisionSet

    swbd_ids = sorted(r.id for r in recs if r.id.startswith("sw"))
    dev_ids = set(swbd_ids[:n_conv])
    dev = (RecordingSet.from_recordings(r for r in recs if r.id in dev_ids),
           SupervisionSet.from_segments(s for s in sups if s.recording_id in dev_ids))
    train = (RecordingSet.from_recordings(r for r in recs if r.id not in dev_ids),
             SupervisionSet.from_segments(s for s in sups if s.recording_id not in dev_ids))
    return train, dev

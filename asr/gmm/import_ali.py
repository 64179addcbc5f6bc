"""Importing Kaldi pdf alignments (`ali-to-pdf` output) into an alignment dir, checked against the features."""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np

from asr.utils import atomic_path, atomic_write_text


log = logging.getLogger(__name__)


def import_alignments(pdf_ali: str | Path, feat_dir: str | Path, out_dir: str | Path,
                      num_pdfs: int | None = None, suffix: str = "") -> int:
    """Copy Kaldi pdf alignments (any int32-vector ark or scp, e.g. `ali-to-pdf` output) into
    `out_dir/pdf_ali{suffix}.{ark,scp}` after checking each length against the features.

    Raises ValueError naming the utterance on a length mismatch, a missing utterance's features
    or a pdf id out of range. Returns the number of utterances imported.
    """
    pdf_ali, out = str(pdf_ali), Path(out_dir)
    lengths = _num_frames(feat_dir)
    reader = kaldiio.load_scp(pdf_ali) if pdf_ali.endswith(".scp") else kaldiio.load_ark(pdf_ali)
    items = dict(reader.items()) if hasattr(reader, "items") else dict(reader)
    if not items:
        raise ValueError(f"{pdf_ali}: no alignments")
    checked = {}
    for utt, a in sorted(items.items()):
        a = np.asarray(a)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{pdf_ali}: utterance {utt}: expected an int32 vector, got {a.dtype} {a.shape}")
        if utt not in lengths:
            raise ValueError(f"{pdf_ali}: utterance {utt} has no features in {feat_dir}")
        if len(a) != lengths[utt]:
            raise ValueError(f"{pdf_ali}: utterance {utt} has {len(a)} alignment frames but "
                             f"{lengths[utt]} feature frames in {feat_dir}")
        if a.min() < 0 or (num_pdfs is not None and a.max() >= num_pdfs):
            raise ValueError(f"{pdf_ali}: utterance {utt}: pdf ids outside [0, {num_pdfs})")
        checked[utt] = a.astype(np.int32)
    out.mkdir(parents=True, exist_ok=True)
    ark, scp = out / f"pdf_ali{suffix}.ark", out / f"pdf_ali{suffix}.scp"
    with atomic_path(ark) as tark, atomic_path(scp) as tscp:
        with kaldiio.WriteHelper(f"ark,scp:{tark},{tscp}") as w:
            for utt in sorted(checked):
                w(utt, checked[utt])
        tscp.write_text(tscp.read_text().replace(str(tark), str(ark.resolve())))
    missing = sorted(set(lengths) - set(checked))
    atomic_write_text(out / f"failed_utts{suffix}", "".join(u + "\n" for u in missing))
    if num_pdfs is not None and not (out / "num_pdfs").is_file():
        atomic_write_text(out / "num_pdfs", f"{num_pdfs}\n")
    log.info("imported %d alignments from %s (%d utterances without one)", len(checked), pdf_ali, len(missing))
    return len(checked)


def _num_frames(feat_dir: str | Path) -> dict[str, int]:
    from asr.features import FeatureReader

    r = FeatureReader(feat_dir, cmvn=False)
    return {u: r.num_frames(u) for u in r.utt_ids}

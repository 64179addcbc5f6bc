"""Throughput of the training-chunk loader alone (no model): examples/s and frames/s.

    python bench/data.py --feat-dir egs/synth/data/train_logmel --ali-dir egs/synth/exp/tri2_ali
    python bench/data.py --synthetic 2000      # no corpus: a temporary Kaldi dir of N utterances

Prints one line per storage mode (memory / memmap) with examples/s, input frames/s (what the
loader copies, context included) and output frames/s (frames the model is trained on); compare
the latter with `train_frames_per_s` in an `exp/am_*/summary.json` to see whether the GPU/CPU
would wait for data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr import data as D  # noqa: E402
from asr.utils import setup_logging  # noqa: E402


def synthetic_dirs(root: Path, num_utts: int, bins: int = 40, num_pdfs: int = 500):
    """A Kaldi feature dir + pdf alignments of `num_utts` random utterances (2-6 s)."""
    import kaldiio

    rng = np.random.default_rng(0)
    feat, ali = root / "train_logmel", root / "ali"
    (feat / "data").mkdir(parents=True)
    ali.mkdir()
    utt2spk, stats = {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{feat}/data/feats.ark,{feat}/feats.scp") as wf, \
            kaldiio.WriteHelper(f"ark,scp:{ali}/pdf_ali.ark,{ali}/pdf_ali.scp") as wa:
        for i in range(num_utts):
            spk, utt = f"s{i // 20:04d}", f"s{i // 20:04d}-u{i:06d}"
            n = int(rng.integers(200, 600))
            m = rng.normal(0, 1, (n, 3 * bins)).astype(np.float32)
            wf(utt, m)
            wa(utt, rng.integers(0, num_pdfs, n).astype(np.int32))
            utt2spk[utt] = spk
            st = stats.setdefault(spk, np.zeros((2, 3 * bins + 1)))
            st[0, :-1] += m.sum(0)
            st[0, -1] += n
            st[1, :-1] += (m.astype(np.float64) ** 2).sum(0)
    with kaldiio.WriteHelper(f"ark,scp:{feat}/data/cmvn.ark,{feat}/cmvn.scp") as w:
        for spk in sorted(stats):
            w(spk, stats[spk])
    (feat / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    spk2utt: dict = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    (feat / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (ali / "num_pdfs").write_text(f"{num_pdfs}\n")
    return feat, ali


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feat-dir")
    p.add_argument("--ali-dir")
    p.add_argument("--synthetic", type=int, default=0, help="make N random utterances instead")
    p.add_argument("--chunk-frames", type=int, default=64)
    p.add_argument("--context", type=int, nargs=2, default=[23, 23], help="left right frames")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--prefetch", type=int, default=0, help="0: measure the loader's own work")
    args = p.parse_args()
    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.synthetic:
            feat_dir, ali_dir = synthetic_dirs(tmp, args.synthetic)
        elif args.feat_dir and args.ali_dir:
            feat_dir, ali_dir = Path(args.feat_dir), Path(args.ali_dir)
        else:
            p.error("give --feat-dir and --ali-dir, or --synthetic N")
        num_pdfs = D.read_num_pdfs(ali_dir)
        alis = D.read_pdf_alignments(ali_dir / "pdf_ali.scp")
        for storage in ("memory", "memmap"):
            t0 = time.perf_counter()
            uset = D.load_utt_set(feat_dir, alis, num_pdfs, storage=storage,
                                  cache_path=tmp / "cache.npy")
            t_load = time.perf_counter() - t0
            loader = D.ChunkLoader(uset, chunk_frames=args.chunk_frames, context=tuple(args.context),
                                   batch_size=args.batch_size, prefetch=args.prefetch)
            n, out_frames, epoch = 0, 0, 0
            t0 = time.perf_counter()
            while n < args.batches:
                for x, y in loader.iter_batches(epoch):
                    n += 1
                    out_frames += int((y != D.IGNORE).sum())
                    if n >= args.batches:
                        break
                epoch += 1
            dt = time.perf_counter() - t0
            ex = n * args.batch_size
            in_frames = ex * x.shape[2]
            print(f"{storage:6s}: load {t_load:6.2f} s ({uset.num_frames} frames) | "
                  f"{ex / dt:9.0f} examples/s | {in_frames / dt:10.0f} input frames/s | "
                  f"{out_frames / dt:10.0f} output frames/s "
                  f"(T={args.chunk_frames}, context={tuple(args.context)}, batch={args.batch_size})")


if __name__ == "__main__":
    main()

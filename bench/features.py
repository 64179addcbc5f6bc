"""Feature-extraction throughput: asr.features (logmel + delta + delta-delta) vs plain
kaldi-native-fbank, in seconds of audio per second of one CPU core, on real synthesised audio.

    python bench/features.py [--wavs 'egs/synth/corpus/wav/*/*.wav'] [--num 200] [--bins 40 64]

Without a synthesised corpus it makes a small one in a temporary folder first. Prints one line
per extractor and the ratio ours / kaldi-native-fbank (best of --repeats runs each).
"""

from __future__ import annotations

import argparse
import glob
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr import features as F  # noqa: E402


def load_audio(pattern: str, num: int) -> list[tuple[np.ndarray, int]]:
    paths = sorted(glob.glob(pattern))[:num]
    if not paths:
        from asr.corpus import synth

        tmp = Path(tempfile.mkdtemp(prefix="bench_feats_"))
        cfg = synth.CorpusConfig(seed=1, speed_perturb={}, sets={
            "train": {"speakers": {"espeak": 4}, "utts_per_speaker": max(1, num // 4)}})
        synth.generate(cfg, tmp / "corpus", tmp / "manifests", nj=2)
        paths = sorted(glob.glob(str(tmp / "corpus" / "wav" / "*" / "*.wav")))[:num]
    return [sf.read(p, dtype="float32") for p in paths]


def knf_fbank(x: np.ndarray, sr: int, bins: int, deltas: bool) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = sr
    opts.mel_opts.num_bins = bins
    comp = knf.OnlineFbank(opts)
    comp.accept_waveform(sr, (x * 32768).tolist())
    comp.input_finished()
    mat = np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])
    if deltas:
        mat = knf.compute_deltas(knf.DeltaOptions(), mat)
    return mat


def throughput(fns: dict, audio, repeats: int) -> dict:
    """Best-of-`repeats` seconds of audio per second for each extractor; the extractors are
    interleaved within each repeat (after one warm-up pass) so machine load hits all alike."""
    seconds = sum(len(x) / sr for x, sr in audio)
    for fn in fns.values():
        fn(*audio[0])
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for x, sr in audio:
                fn(x, sr)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: seconds / t for name, t in best.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wavs", default=str(Path(__file__).resolve().parent.parent /
                                         "egs/synth/corpus/wav/*/*.wav"))
    p.add_argument("--num", type=int, default=200, help="utterances")
    p.add_argument("--bins", type=int, nargs="+", default=[40, 64])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    audio = load_audio(args.wavs, args.num)
    total = sum(len(x) / sr for x, sr in audio)
    print(f"{len(audio)} utterances, {total:.1f} s of audio at {audio[0][1]} Hz; "
          f"one process, best of {args.repeats}")
    for bins in args.bins:
        cfg = F.FeatureConfig(num_mel_bins=bins)
        r = throughput({
            "asr.features logmel+d+dd": lambda x, sr: F.logmel_deltas(x, sr, bins),
            "asr.features logmel only": lambda x, sr: F.compute_static(x, sr, cfg),
            "kaldi-native-fbank fbank": lambda x, sr: knf_fbank(x, sr, bins, False),
            "kaldi-native-fbank fbank+d+dd": lambda x, sr: knf_fbank(x, sr, bins, True),
        }, audio, args.repeats)
        for name, v in r.items():
            print(f"bins={bins:3d}  {name:32s} {v:8.0f} s/s")
        ours, plain = r["asr.features logmel+d+dd"], r["kaldi-native-fbank fbank"]
        print(f"bins={bins:3d}  ratio asr.features logmel+d+dd / plain kaldi-native-fbank = "
              f"{ours / plain:.2f}x (vs knf+deltas {ours / r['kaldi-native-fbank fbank+d+dd']:.2f}x)")
    r = throughput({"mfcc": lambda x, sr: F.mfcc_deltas(x, sr)}, audio, args.repeats)
    print(f"mfcc (23 bins, 13 ceps)+d+dd asr.features  {r['mfcc']:8.0f} s/s")

if __name__ == "__main__":
    main()

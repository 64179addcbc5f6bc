"""Kaldi-compatible log-mel filterbank and MFCC features with deltas, CMVN and storage.

Both kinds come from kaldi-native-fbank (Kaldi's own feature code): frames of 25 ms every
10 ms (snip_edges=True, so both kinds give the same frame count), DC removal, pre-emphasis
0.97, Povey window, FFT padded to a power of two, power spectrum, Kaldi's mel filters (low
20 Hz, high Nyquist), log; MFCC adds the DCT, cepstral lifter 22 and raw log energy as c0.
The input waveform is float in [-1, 1] and is scaled by 32768 as Kaldi reads 16-bit samples.
Deltas are Kaldi's add-deltas (window 2, edge frames repeated), also from kaldi-native-fbank.
Dither is off unless configured (then seeded per utterance from its id).

Storage (docs/interfaces.md): a feature dir `data/<set>_<kind>/` is a copy of the data dir
plus `feats.scp` (float32 `(frames, 3*D)` matrices `[static | delta | delta-delta]`, not
normalised, binary Kaldi arks under `<dir>/data/`), `utt2num_frames`, `feat_dim`, `cmvn.scp`
(Kaldi CMVN stats per speaker, `(2, D+1)` float64) and, for lhotse users, `cuts.jsonl.gz`
(MonoCuts with lilcom-compressed features under `<dir>/data/`, lossy at ~1e-2).

    python -m asr.features compute --kind logmel --config egs/synth/conf/features.yaml \
        --data data/train --out data/train_logmel --nj 2 [--no-pipes]

The input dir is validated before anything is computed (one sample rate unless `sample_rate`
+ `resample: true` ask for a logged resample; one channel unless `channel` picks one; no
truncated WAVs; every utterance at least one frame long), and the output dir is built beside
`--out` and renamed onto it when complete. wav.scp commands (`cmd |`) are run and logged one by
one; `--no-pipes` or `allow_pipes: false` refuses them.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from asr.feature_reader import FeatureReader, apply_cmvn, cmvn_stats, to_channels  # noqa: F401 (re-exported)
from asr.utils import atomic_path, atomic_write_text, read_kaldi_map, setup_logging

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FeatureConfig:
    """Feature options (defaults: Kaldi's; `kind` picks logmel or MFCC)."""

    kind: str = "logmel"  # "logmel" | "mfcc"
    num_mel_bins: int = 64
    num_ceps: int = 13  # mfcc only
    cepstral_lifter: float = 22.0  # mfcc only
    use_energy: bool = True  # mfcc only: c0 = raw log energy
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist
    delta_window: int = 2
    delta_order: int = 2
    cmvn: str = "speaker"  # "speaker" | "global": which stats cmvn.scp holds
    lhotse_storage: bool = True
    batch_size: int = 100  # utterances per archive / parallel task
    sample_rate: int = 0  # Hz every recording must have; 0: the set's own (one rate for all)
    resample: bool = False  # with sample_rate: resample other rates to it (logged per recording)
    channel: int = -1  # -1: multi-channel audio is an error (as in Kaldi); k >= 0: its channel k
    allow_pipes: bool = True  # false: refuse wav.scp shell commands (`cmd |`)

    @property
    def dim(self) -> int:
        """Static feature dimension D (stored matrices have (delta_order + 1) * D columns)."""
        return self.num_ceps if self.kind == "mfcc" else self.num_mel_bins

    @classmethod
    def load(cls, kind: str, recipe_config: str | os.PathLike | None = None,
             **overrides) -> "FeatureConfig":
        """Defaults from `conf/<kind>.yaml` (repo root), then the `<kind>:` section of a recipe's
        features.yaml, then keyword overrides (None values ignored)."""
        from asr.config import from_dict, read_yaml

        base = REPO_ROOT / "conf" / f"{kind}.yaml"
        values: dict = read_yaml(base) if base.exists() else {}
        where = str(base)
        if recipe_config:
            values.update(read_yaml(recipe_config).get(kind) or {})
            where = f"{recipe_config} ({kind}:) over {base}"
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = from_dict(cls, {**values, "kind": kind}, where)
        if cfg.kind not in ("logmel", "mfcc"):
            raise ValueError(f"feature kind must be logmel or mfcc, not {cfg.kind!r}")
        if cfg.cmvn not in ("speaker", "global"):
            raise ValueError(f"cmvn must be 'speaker' or 'global', not {cfg.cmvn!r}")
        if cfg.resample and cfg.sample_rate <= 0:
            raise ValueError("resample: true needs sample_rate (the rate to resample to)")
        if cfg.sample_rate < 0 or cfg.channel < -1:
            raise ValueError(f"bad sample_rate {cfg.sample_rate} or channel {cfg.channel}")
        return cfg


# ---------------------------------------------------------------------------------------------
# Core computation (kaldi-native-fbank: Kaldi's own fbank, MFCC and delta code)
# ---------------------------------------------------------------------------------------------
def num_frames(num_samples: int, sample_rate: int, frame_length_ms: float = 25.0,
               frame_shift_ms: float = 10.0) -> int:
    """Frames Kaldi makes from num_samples with snip_edges=True."""
    win = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def knf_options(cfg: FeatureConfig, sample_rate: int):
    """kaldi-native-fbank FbankOptions / MfccOptions equivalent to `cfg` (dither off: see
    compute_static)."""
    import kaldi_native_fbank as knf

    nyquist = 0.5 * sample_rate
    high = cfg.high_freq if cfg.high_freq > 0 else nyquist + cfg.high_freq
    if not 0 <= cfg.low_freq < high <= nyquist:
        raise ValueError(f"bad mel range low_freq={cfg.low_freq} high_freq={cfg.high_freq} "
                         f"for {sample_rate} Hz audio")
    opts = knf.MfccOptions() if cfg.kind == "mfcc" else knf.FbankOptions()
    fo = opts.frame_opts
    fo.samp_freq = float(sample_rate)
    fo.frame_length_ms = cfg.frame_length_ms
    fo.frame_shift_ms = cfg.frame_shift_ms
    fo.dither = 0.0
    fo.preemph_coeff = cfg.preemph_coeff
    fo.remove_dc_offset = cfg.remove_dc_offset
    fo.window_type = "povey"
    fo.round_to_power_of_two = True
    fo.snip_edges = True
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    if cfg.kind == "mfcc":
        opts.num_ceps = cfg.num_ceps
        opts.cepstral_lifter = cfg.cepstral_lifter
        opts.use_energy = cfg.use_energy
        opts.raw_energy = True
    else:
        opts.use_energy = False
        opts.use_log_fbank = True
        opts.use_power = True
    return opts


def compute_static(waveform: np.ndarray, sample_rate: int, cfg: FeatureConfig,
                   seed: int = 0) -> np.ndarray:
    """Static features, float32 (frames, D): log-mel (D = num_mel_bins) or MFCC (D = num_ceps).

    `waveform`: 1-D float samples in [-1, 1] (scaled by 32768 as Kaldi reads 16-bit audio).
    With cfg.dither > 0, Gaussian noise of that standard deviation (in 16-bit units) is added
    to the samples from a generator seeded by `seed`, so results are reproducible (Kaldi draws
    it per frame from an unseeded generator).
    """
    import kaldi_native_fbank as knf

    x = np.asarray(waveform, dtype=np.float32).reshape(-1) * np.float32(32768.0)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise ValueError(f"non-finite features: the waveform has NaN/inf samples (first at {bad})")
    if num_frames(len(x), sample_rate, cfg.frame_length_ms, cfg.frame_shift_ms) == 0:
        return np.zeros((0, cfg.dim), dtype=np.float32)
    if cfg.dither > 0:
        x = x + np.float32(cfg.dither) * np.random.default_rng(seed).standard_normal(
            len(x), dtype=np.float32)
    opts = knf_options(cfg, sample_rate)
    comp = knf.OnlineMfcc(opts) if cfg.kind == "mfcc" else knf.OnlineFbank(opts)
    comp.accept_waveform(float(sample_rate), x.tolist())  # (a list converts faster than an array)
    comp.input_finished()
    return np.array([comp.get_frame(i) for i in range(comp.num_frames_ready)], dtype=np.float32)


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """(frames, D) -> float32 (order + 1, frames, D): static, delta, delta-delta (Kaldi's
    add-deltas formula, edge frames repeated)."""
    import kaldi_native_fbank as knf

    feats = np.ascontiguousarray(feats, dtype=np.float32)
    t, d = feats.shape
    if t == 0:
        return np.zeros((order + 1, 0, d), dtype=np.float32)
    opts = knf.DeltaOptions()
    opts.order, opts.window = order, window
    out = np.asarray(knf.compute_deltas(opts, feats), dtype=np.float32)  # (frames, (order+1)*D)
    return np.ascontiguousarray(out.reshape(t, order + 1, d).transpose(1, 0, 2))


def logmel_deltas(waveform: np.ndarray, sample_rate: int, num_mel_bins: int = 64,
                  **options) -> np.ndarray:
    """Log-mel + delta + delta-delta: float32 (3, frames, num_mel_bins), not normalised.

    `waveform`: 1-D float in [-1, 1]; Kaldi fbank defaults (25 ms, 10 ms, dither 0); extra
    FeatureConfig fields may be passed as keyword options.
    """
    cfg = FeatureConfig(kind="logmel", num_mel_bins=num_mel_bins, **options)
    return add_deltas(compute_static(waveform, sample_rate, cfg), cfg.delta_order, cfg.delta_window)


def mfcc_deltas(waveform: np.ndarray, sample_rate: int, num_mel_bins: int = 23,
                num_ceps: int = 13, **options) -> np.ndarray:
    """MFCC + delta + delta-delta: float32 (3, frames, num_ceps), not normalised."""
    cfg = FeatureConfig(kind="mfcc", num_mel_bins=num_mel_bins, num_ceps=num_ceps, **options)
    return add_deltas(compute_static(waveform, sample_rate, cfg), cfg.delta_order, cfg.delta_window)


def compute_features(waveform: np.ndarray, sample_rate: int, cfg: FeatureConfig,
                     seed: int = 0) -> np.ndarray:
    """Stored form: float32 (frames, (delta_order + 1) * D) = [static | delta | delta-delta]."""
    ch = add_deltas(compute_static(waveform, sample_rate, cfg, seed), cfg.delta_order,
                    cfg.delta_window)
    frames = ch.shape[1]
    return np.ascontiguousarray(ch.transpose(1, 0, 2).reshape(frames, ch.shape[0] * ch.shape[2]))


class FeatureError(ValueError):
    """A feature-extraction problem naming the utterance (and file)."""


def _utt_seed(utt: str) -> int:
    return zlib.crc32(utt.encode())


def _load_recording(utt: str, rec: str, entry: str, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    """Samples and rate of one recording as features take them: the configured channel, and
    resampled to cfg.sample_rate when cfg.resample asks (logged); else a rate other than
    cfg.sample_rate is an error."""
    from asr.corpus.datadir import DataDirError, read_wav_entry

    try:
        samples, sr = read_wav_entry(entry, channel=cfg.channel if cfg.channel >= 0 else None,
                                     allow_pipes=cfg.allow_pipes, name=rec)
    except DataDirError as e:
        raise FeatureError(f"utterance '{utt}' (recording '{rec}'): {e}") from None
    if cfg.sample_rate and sr != cfg.sample_rate:
        if not cfg.resample:
            raise FeatureError(f"utterance '{utt}': recording '{rec}' ({entry}) is {sr} Hz, the "
                               f"set is {cfg.sample_rate} Hz (set `resample: true` to resample)")
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr, cfg.sample_rate)
        log.warning("recording '%s' (%s): resampling %d Hz -> %d Hz (resample: true)", rec,
                    entry, sr, cfg.sample_rate)
        samples = resample_poly(samples, cfg.sample_rate // g, sr // g).astype(np.float32)
        sr = cfg.sample_rate
    return samples, sr


def _extract_batch(args) -> tuple[list[tuple], dict[str, np.ndarray]]:
    """Compute and store one batch of (utt, spk, rec, wav entry, start, end).

    `args`: (batch index, utterances, FeatureConfig, ark dir, lhotse dir or None); writes
    `<ark dir>/feats.<batch index>.ark`. Returns ((utt, frames, ark path:offset, lhotse key,
    sample rate) per utterance, CMVN stats per speaker). The ark path in the results is the
    one written; `extract` rewrites it to the final dir."""
    import kaldiio

    batch_index, utts, cfg, ark_dir, lhotse_dir = args
    ark = Path(ark_dir) / f"feats.{batch_index}.ark"
    results = []
    cache: tuple[str, np.ndarray, int] | None = None
    mats, rates = {}, {}
    spk_stats: dict[str, np.ndarray] = {}
    for utt, spk, rec, entry, start, end in utts:
        if cache is None or cache[0] != rec:
            cache = (rec, *_load_recording(utt, rec, entry, cfg))
        _, samples, sr = cache
        if start is not None:
            s0 = int(round(start * sr))
            s1 = len(samples) if end is None or end < 0 else int(round(end * sr))
            if s1 > len(samples) + int(0.02 * sr) or s0 >= len(samples):
                raise FeatureError(f"utterance '{utt}': segment {start}-{end} s is outside "
                                   f"recording '{rec}' ({len(samples) / sr:.3f} s, {entry})")
            samples = samples[s0:s1]
        if num_frames(len(samples), sr, cfg.frame_length_ms, cfg.frame_shift_ms) == 0:
            raise FeatureError(f"utterance '{utt}': too short for one frame: {len(samples)} "
                               f"samples ({1000 * len(samples) / sr:.1f} ms) < "
                               f"{cfg.frame_length_ms:g} ms (recording '{rec}', {entry})")
        try:
            mat = compute_features(samples, sr, cfg, _utt_seed(utt))
        except ValueError as e:
            raise FeatureError(f"utterance '{utt}': {e} ({entry})") from None
        if not np.isfinite(mat).all():
            raise FeatureError(f"utterance '{utt}': non-finite features (NaN/inf) from {entry}")
        mats[utt] = mat
        rates[utt] = sr
        st = cmvn_stats(mat)
        spk_stats[spk] = spk_stats[spk] + st if spk in spk_stats else st
    with atomic_path(ark) as tmp_ark:
        offsets = {}
        with open(tmp_ark, "wb") as f:
            for utt, mat in mats.items():
                f.write(utt.encode() + b" ")
                offsets[utt] = f.tell()
                kaldiio.save_mat(f, mat)  # binary float matrix, no key
    lhotse_keys = {}
    if lhotse_dir is not None:
        from lhotse import LilcomChunkyWriter

        # (LilcomChunkyWriter picks its own file name; cuts.jsonl.gz, written last, commits it)
        path = Path(lhotse_dir) / f"lhotse_feats.{batch_index}.lca"
        with LilcomChunkyWriter(str(path), mode="w") as w:
            for utt, mat in mats.items():
                lhotse_keys[utt] = w.write(utt, mat.copy())  # lilcom quantises its input in place
    for utt, mat in mats.items():
        results.append((utt, mat.shape[0], f"{ark.resolve()}:{offsets[utt]}",
                        lhotse_keys.get(utt), rates[utt]))
    return results, spk_stats


def _staging_dir(out: Path) -> Path:
    """`.<name>.tmp-<pid>` beside `out` for this process. The newest staging dir that a killed run
    left (its process is gone) with finished jobs in it (`log/*.done`, asr.executor) is taken over
    under this name (without its files other than `log/` and `data/`), so that a re-run does not
    compute those jobs again; other stale ones are removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    stale = []
    for old in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(old.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except (ValueError, ProcessLookupError):
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            stale.append(old)
    stale.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in stale:
        if not tmp.exists() and any((old / "log").glob("*.done")):
            try:
                os.rename(old, tmp)
            except OSError:  # (another run took it over first)
                continue
            for f in tmp.iterdir():
                if f.name not in ("log", "data"):
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
            log.info("resuming the finished jobs of %s (left by an interrupted run)", old)
            continue
        log.info("removing %s (left by an interrupted run)", old)
        shutil.rmtree(old, ignore_errors=True)
    return tmp


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename the finished `tmp` onto `out` (an old `out` is moved aside first, then deleted)."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def extract(data_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: FeatureConfig,
            nj: int = 1, cmd: str = "local") -> dict:
    """Features for every utterance of a Kaldi data dir into feature dir `out_dir`.

    The input is validated first (asr.corpus.datadir.validate_datadir with the config's
    sample rate, channel, pipe and one-frame rules); nothing is computed if it fails. The
    dir is built in a temporary sibling and renamed onto `out_dir` only when complete, so an
    interrupted or failed run leaves the previous `out_dir` (or none), never a mix.
    Writes feats.scp, utt2num_frames, feat_dim, cmvn.scp (+ cuts.jsonl.gz if
    cfg.lhotse_storage). Fails with FeatureError naming the utterance on unreadable audio,
    too-short segments or non-finite features. Deterministic and independent of `nj` and `cmd`.
    The batches are jobs on `cmd` (asr.executor: local, dask://HOST:PORT, slurm|pbs|sge), logging
    to `<out_dir>/log/make_<kind>.<job>.log`; a run that was killed leaves its staging dir, whose
    finished jobs a re-run takes over (`_staging_dir`).
    """
    from dataclasses import replace

    from asr.corpus.datadir import DataDirError, read_datadir, validate_datadir

    t0 = time.time()
    data_dir, out = Path(data_dir), Path(out_dir)
    try:
        rate = 0 if cfg.resample else (cfg.sample_rate or None)  # 0: any (resampled later)
        counts = validate_datadir(
            data_dir, check_audio=True, sample_rate=rate,
            channel=cfg.channel if cfg.channel >= 0 else None, allow_pipes=cfg.allow_pipes,
            min_duration_s=cfg.frame_length_ms / 1000)
        dd = read_datadir(data_dir)
    except DataDirError as e:
        raise FeatureError(f"input data dir {data_dir} is not valid (nothing computed): {e}"
                           ) from None
    if not cfg.sample_rate and "sample_rate" in counts:  # every file entry has this rate
        cfg = replace(cfg, sample_rate=counts["sample_rate"])
    if not dd.text:
        raise FeatureError(f"{data_dir / 'text'}: no utterances")
    final = out.resolve()
    tmp = _staging_dir(final)
    try:
        summary = _extract_into(data_dir, dd, tmp, final, cfg, nj, cmd)
        _replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    summary["wall_s"] = round(time.time() - t0, 1)
    log.info("%s -> %s (%s): %s", data_dir, out, cfg.kind, summary)
    return summary


def _extract_into(data_dir: Path, dd, out: Path, final: Path, cfg: FeatureConfig, nj: int,
                  cmd: str = "local") -> dict:
    """The body of `extract`: everything written under `out`, paths in the scp files and cuts
    naming `final` (where `out` will be renamed to)."""
    import kaldiio
    from tqdm import tqdm

    from asr.corpus.datadir import copy_datadir, validate_datadir
    from asr.executor import remove_done_records, run_jobs

    copy_datadir(data_dir, out)
    ark_dir = out / "data"
    ark_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for utt in sorted(dd.text):
        if dd.segments is not None:
            rec, start, end = dd.segments[utt]
        else:
            rec, start, end = utt, None, None
        items.append((utt, dd.utt2spk[utt], rec, dd.wav_scp[rec], start, end))
    if cfg.lhotse_storage:
        import lhotse  # noqa: F401  (once here, not in every forked worker)
    bs = max(1, cfg.batch_size)
    batches = [(i, items[k:k + bs], cfg, str(ark_dir), str(ark_dir) if cfg.lhotse_storage else None)
               for i, k in enumerate(range(0, len(items), bs))]
    results = []
    spk_stats: dict[str, np.ndarray] = {}

    staged_arks = ark_dir.resolve()

    def collect(res) -> None:
        # (a job taken over from a killed run names that run's staging dir: name this one)
        results.extend((u, n, f"{staged_arks / Path(v.rsplit(':', 1)[0]).name}:{v.rsplit(':', 1)[1]}", k, sr)
                       for u, n, v, k, sr in res[0])
        for spk, st in res[1].items():
            spk_stats[spk] = spk_stats[spk] + st if spk in spk_stats else st
        bar.update(len(res[0]))

    bar = tqdm(total=len(items), desc=f"{cfg.kind} {data_dir.name}", unit="utt")
    stage = f"make_{cfg.kind}"

    def outputs(i: int) -> list[Path]:
        return [ark_dir / f"feats.{i}.ark"] + ([ark_dir / f"lhotse_feats.{i}.lca"] if cfg.lhotse_storage else [])

    inputs = [data_dir / n for n in ("wav.scp", "segments", "utt2spk") if (data_dir / n).exists()]
    for res in run_jobs(_extract_batch, [(b,) for b in batches], cmd, nj, stage=stage, log_dir=out / "log",
                        inputs=inputs, outputs=outputs,
                        keys=[(b[0], b[1], b[2], b[4] is not None) for b in batches]):  # not the dir's name
        collect(res)
    bar.close()
    wanted = {p.name for i in range(len(batches)) for p in outputs(i)}
    for f in ark_dir.iterdir():  # archives of a killed run with other options
        if f.name not in wanted:
            f.unlink()
    remove_done_records(out / "log", stage)  # complete: the records are of no later use
    rates: dict[int, str] = {}
    for utt, _, _, _, sr in results:
        rates.setdefault(sr, utt)
    if len(rates) > 1:
        (r0, u0), (r1, u1) = sorted(rates.items(), key=lambda x: x[1])[:2]
        raise FeatureError(f"{data_dir / 'wav.scp'}: mixed sample rates: utterance '{u0}' is "
                           f"{r0} Hz, utterance '{u1}' is {r1} Hz (set `sample_rate` and "
                           "`resample: true` in the feature config to resample)")
    staged, target = str(out.resolve()), str(final)
    results = [(u, n, target + v[len(staged):] if v.startswith(staged) else v, k, sr)
               for u, n, v, k, sr in results]
    frames = {r[0]: r[1] for r in results}
    atomic_write_text(out / "feats.scp", "".join(f"{r[0]} {r[2]}\n" for r in results))
    atomic_write_text(out / "utt2num_frames", "".join(f"{u} {n}\n" for u, n in frames.items()))
    dim = (cfg.delta_order + 1) * cfg.dim
    atomic_write_text(out / "feat_dim", f"{dim}\n")
    if cfg.cmvn == "global":
        total = sum(spk_stats.values())
        spk_stats = {s: total for s in spk_stats}
    with atomic_path(out / "cmvn.ark") as tmp_ark, atomic_path(out / "cmvn.scp") as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as w:
            for spk in sorted(spk_stats):
                w(spk, spk_stats[spk])
        # the scp names the temporary ark: point it at the final name
        text = Path(tmp_scp).read_text().replace(str(tmp_ark), str(final / "cmvn.ark"))
        Path(tmp_scp).write_text(text)
    if cfg.lhotse_storage:
        _write_lhotse_cuts(out, dd, results, cfg, final / "data")
    atomic_write_text(out / "feature_config.yaml", yaml.safe_dump(asdict(cfg), sort_keys=True))
    validate_datadir(out, check_audio=False)
    total_frames = sum(frames.values())
    return {"utterances": len(frames), "frames": total_frames, "dim": dim,
            "audio_s": round(total_frames * cfg.frame_shift_ms / 1000, 1)}


def _write_lhotse_cuts(out: Path, dd, results, cfg: FeatureConfig, ark_dir: Path) -> None:
    from lhotse import Features, MonoCut, SupervisionSegment

    from asr.corpus.synth import write_jsonl_gz

    shift = cfg.frame_shift_ms / 1000
    cuts = []
    for utt, n, scp_value, key, sr in results:
        batch_ark = Path(scp_value.rsplit(":", 1)[0])
        lca = ark_dir / batch_ark.name.replace("feats.", "lhotse_feats.").replace(".ark", ".lca")
        start = dd.segments[utt][1] if dd.segments is not None else 0.0
        rec = dd.segments[utt][0] if dd.segments is not None else utt
        duration = round(n * shift, 4)
        feats = Features(type=cfg.kind, num_frames=n, num_features=(cfg.delta_order + 1) * cfg.dim,
                         frame_shift=shift, sampling_rate=sr,
                         start=start, duration=duration, storage_type="lilcom_chunky",
                         storage_path=str(lca.resolve()), storage_key=key, recording_id=rec,
                         channels=0)
        sup = SupervisionSegment(id=utt, recording_id=rec, start=0.0, duration=duration, channel=0,
                                 text=dd.text[utt], speaker=dd.utt2spk[utt])
        cuts.append(MonoCut(id=utt, start=start, duration=duration, channel=0,
                            supervisions=[sup], features=feats).to_dict())
    write_jsonl_gz(out / "cuts.jsonl.gz", cuts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Kaldi-compatible logmel/MFCC + deltas for a data dir")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compute", help="features for one data dir")
    c.add_argument("--kind", choices=("logmel", "mfcc"), required=True)
    c.add_argument("--config", help="recipe features.yaml (sections logmel:, mfcc:); defaults "
                                    "from conf/<kind>.yaml")
    c.add_argument("--data", required=True, nargs="+", help="input Kaldi data dir(s)")
    c.add_argument("--out", required=True, nargs="+", help="output feature dir(s), one per --data")
    c.add_argument("--num-mel-bins", type=int, help="override num_mel_bins")
    c.add_argument("--cmvn", choices=("speaker", "global"), help="override cmvn")
    c.add_argument("--batch-size", type=int, help="override batch_size (utterances per archive)")
    c.add_argument("--nj", type=int, default=1, help="parallel processes")
    c.add_argument("--cmd", dest="job_cmd", default="local",
                   help="where jobs run: local, dask://HOST:PORT, slurm|pbs|sge (asr.executor)")
    c.add_argument("--no-pipes", action="store_true",
                   help="refuse wav.scp entries that are shell commands (allow_pipes: false)")
    args = p.parse_args(argv)
    setup_logging(log_file=Path(args.out[0]).parent / "log" / f"features_{args.kind}.log")
    if len(args.data) != len(args.out):
        p.error("give one --out per --data")
    try:
        cfg = FeatureConfig.load(args.kind, args.config, num_mel_bins=args.num_mel_bins,
                                 cmvn=args.cmvn, batch_size=args.batch_size,
                                 allow_pipes=False if args.no_pipes else None)
        for data_dir, out_dir in zip(args.data, args.out):
            extract(data_dir, out_dir, cfg, nj=args.nj, cmd=args.job_cmd)
    except ValueError as e:  # FeatureError, DataDirError, bad options: one line, exit 1
        log.error("%s", e)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""GMM decoding check: decode a data set through a graph dir with the GMM; scored by `asr.score`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import kaldi_hmm_gmm as khg
import numpy as np
from tqdm import tqdm

from asr.utils import atomic_write_text
from asr.gmm.align import load_features, read_text
from asr.graph import load_graph
from asr.hmm_io import load_model
from asr.score import score_files
from asr.gmm import feature_pipeline as fp
from asr.gmm.transforms import write_transforms


log = logging.getLogger(__name__)


def decode(graph_dir: str | Path, feats: Mapping[str, np.ndarray], model: str | Path | None = None,
           acoustic_scale: float = 0.1, beam: float = 13.0, lattice_beam: float = 6.0,
           max_active: int = 7000, alignments: dict | None = None) -> dict[str, list[str]]:
    """GMM decoding through `graph_dir/HCLG.fst` with Kaldi's lattice-faster decoder (best path).

    `model`: the GMM (`final.mdl`); default `graph_dir/final.mdl`. Returns utt -> words;
    `alignments`, when given, gets each decoded utterance's best-path transition ids.
    """
    g = load_graph(graph_dir)
    tm, am = load_model(model or Path(graph_dir) / "final.mdl")
    cfg = khg.LatticeFasterDecoderConfig(beam=beam, max_active=max_active, lattice_beam=lattice_beam)
    decoder = khg.LatticeFasterDecoder(g.hclg, cfg)
    hyps = {}
    for utt in tqdm(sorted(feats), desc="decode", disable=len(feats) < 50):
        X = feats[utt]
        dec = khg.DecodableAmDiagGmmScaled(am, tm, X, acoustic_scale)
        ok, ali, words, _ = khg.decode_utterance_lattice_faster(decoder, dec, tm, utt, True)
        if ok and alignments is not None and len(ali) == X.shape[0]:
            alignments[utt] = np.asarray(ali, np.int32)
        if not ok:
            log.warning("%s: decoding failed", utt)
        hyps[utt] = [g.words[w] for w in words] if ok else []
    return hyps


def decode_and_score(graph_dir: str | Path, data_dir: str | Path, feat_dir: str | Path, out_dir: str | Path,
                     acoustic_scale: float = 0.1, beam: float = 13.0, model_dir: str | Path | None = None) -> dict:
    """GMM-decode a data set through `graph_dir`; writes `hyp.txt`, `ref.txt` (the decoded
    utterances' transcripts), `scoring/` (asr.score's files) and `wer.json` in `out_dir`.

    `model_dir` (the GMM round's dir): its feature transforms (final.mat; for sat a first pass,
    fMLLR per speaker from its best paths, written to `out_dir/trans.{ark,scp}`, a second pass).
    Returns wer.json's dict: wer (%), errors, words, ins, del, sub, utts, decode_s, rtf.
    """
    refs = read_text(data_dir)
    feats = load_features(feat_dir, sorted(refs))
    if not feats:
        raise ValueError(f"{feat_dir}: no utterance has both features and a transcript in {data_dir}/text")
    t0 = time.time()
    if model_dir is not None and fp.read_feat_opts(model_dir)["feat_type"] != "delta":
        feats = fp.si_features(model_dir, feats)
        if fp.read_feat_opts(model_dir)["feat_type"] == "sat":  # two passes: SI, fMLLR per speaker, again
            utt2spk = fp.read_utt2spk(feat_dir, data_dir)
            first: dict = {}
            decode(graph_dir, feats, acoustic_scale=acoustic_scale, beam=beam, alignments=first)
            tm, am = load_model(Path(graph_dir) / "final.mdl")
            trans = fp.speaker_fmllr(am, tm, feats, first, utt2spk, what=f"decode {feat_dir} fMLLR")
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            write_transforms(out_dir, trans)
            feats = fp.apply_speakers(trans, feats, utt2spk)
    hyps = decode(graph_dir, feats, acoustic_scale=acoustic_scale, beam=beam)
    el = time.time() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyp.txt", "".join(f"{u} {' '.join(hyps[u])}".rstrip() + "\n" for u in sorted(hyps)))
    atomic_write_text(out / "ref.txt", "".join(f"{u} {' '.join(refs[u])}".rstrip() + "\n" for u in sorted(feats)))
    s = score_files(out / "ref.txt", [out / "hyp.txt"], out / "scoring")
    res = {"wer": s["wer"], "errors": s["err"], "words": s["ref_words"], "ins": s["ins"], "del": s["del"],
           "sub": s["sub"], "utts": s["sentences"]}
    frames = sum(feats.num_frames(u) for u in feats)
    res.update(decode_s=round(el, 1), rtf=round(el / max(frames * 0.01, 1e-9), 4),
               acoustic_scale=acoustic_scale, beam=beam)
    atomic_write_text(out / "wer.json", json.dumps(res, indent=1) + "\n")
    log.info("%s on %s: %%WER %.2f [ %d / %d, %d ins, %d del, %d sub ] rtf %.3f", graph_dir, feat_dir,
             res["wer"], res["errors"], res["words"], res["ins"], res["del"], res["sub"], res["rtf"])
    return res


def decode_check(graph_config: str | Path, exp: str | Path, test_feats: str | Path,
                 dev_feats: str | Path | None = None, force: bool = False) -> dict:
    """The recipe's GMM check (graph.yaml `gmm_decode: true`): for each of `gmm_models`, decode
    `test_feats` (a feature dir with `text`) through `exp/<model>/graph` into
    `exp/<model>/decode_test`, at the acoustic scale of `acoustic_scales` that is best on
    `dev_feats` (`exp/<model>/decode_dev_as<scale>`). Finished decodes are kept unless `force`."""
    from asr.graph import GraphConfig

    cfg = GraphConfig.from_yaml(graph_config)
    out: dict = {}
    if not cfg.gmm_decode:
        log.info("%s: gmm_decode is off: no GMM decode", graph_config)
        return out
    exp = Path(exp)
    for model in cfg.gmm_models:
        gdir, ddir = exp / model / "graph", exp / model / "decode_test"
        if not force and (ddir / "wer.json").is_file():
            out[f"{model}_test"] = json.loads((ddir / "wer.json").read_text())
            continue
        scales = [float(x) for x in cfg.acoustic_scales]
        best = scales[0]
        if dev_feats is not None and len(scales) > 1:  # tune the acoustic scale on dev
            dev = {a: decode_and_score(gdir, dev_feats, dev_feats, exp / model / f"decode_dev_as{a:g}",
                                       acoustic_scale=a, model_dir=exp / model)["wer"] for a in scales}
            best = min(scales, key=lambda a: (dev[a], -a))
            out[f"{model}_dev_wer"] = dev
        out[f"{model}_test"] = decode_and_score(gdir, test_feats, test_feats, ddir, acoustic_scale=best,
                                                model_dir=exp / model)
    return out

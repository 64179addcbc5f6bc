"""Tests of asr.train: model dir contents, stop-and-resume equality, a real 2-process DDP run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr import train
from test_data import make_corpus

ROOT = Path(__file__).resolve().parents[1]
BINS = 16


def write_conf(tmp: Path, c: dict, **extra) -> Path:
    cfg = {"feat_dir": str(c["feat_dir"]), "ali_dir": str(c["ali_dir"]),
           "model": "resnet22", "model_kwargs": {"width": 8, "head_dim": 16},
           "chunk_frames": 8, "batch_size": 8, "epochs": 2, "lr": 0.05, "momentum": 0.9,
           "weight_decay": 1e-5, "clip_grad_norm": 5.0, "anneal_factor": 0.5,
           "anneal_start_epoch": 1, "cv_fraction": 0.2, "seed": 7, "ckpt_every_steps": 3,
           "log_every_steps": 1, "threads": 1, **extra}
    path = tmp / "conf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path, num_spk=4, utts_per_spk=6, num_pdfs=5, bins=BINS, seed=1)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_model_dir_and_learns(corpus, tmp_path):
    conf = write_conf(tmp_path, corpus)
    out = tmp_path / "am"
    assert train.main(["--config", str(conf), "--dir", str(out), "--epochs", "3"]) == 0
    final = torch.load(out / "final.pt", weights_only=False)
    assert {"model_name", "model_kwargs", "state_dict", "num_pdfs", "feat_dim", "context"} <= set(final)
    assert final["num_pdfs"] == 5 and final["feat_dim"] == 3 * BINS
    assert final["model_kwargs"]["num_classes"] == 5 and final["model_kwargs"]["in_bins"] == BINS
    from asr.models import create_model
    model = create_model(final["model_name"], **final["model_kwargs"])
    model.load_state_dict(final["state_dict"])
    assert list(model.context) == list(final["context"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("cv_frame_acc", "cv_loss", "train_frames_per_s", "wall_s", "params", "model"):
        assert key in summary
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    counts = [int(t) for t in (out / "pdf_counts").read_text().split()[1:-1]]
    assert len(counts) == 5 and sum(counts) > 0
    rows = read_csv(out / "train_log.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    # learned something: loss fell and CV accuracy is well above chance (1/5)
    steps = read_csv(out / "train_steps.csv")
    assert float(rows[-1]["train_loss"]) < float(steps[0]["loss"])
    assert summary["cv_frame_acc"] > 0.4
    # lr annealed by 0.5 per epoch after epoch 1
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[1] == pytest.approx(0.05 * 0.5) and lrs[2] == pytest.approx(0.05 * 0.25)
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "checkpoints" / "last.pt").exists() and (out / "checkpoints" / "epoch-3.pt").exists()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 3
    # re-running with --resume after the end does nothing and keeps the model
    mtime = (out / "final.pt").stat().st_mtime_ns
    assert train.main(["--config", str(conf), "--dir", str(out), "--epochs", "3", "--resume"]) == 0
    assert (out / "final.pt").stat().st_mtime_ns == mtime


def test_stop_mid_epoch_and_resume_gives_same_weights(corpus, tmp_path):
    conf = write_conf(tmp_path, corpus)
    full, split = tmp_path / "full", tmp_path / "split"
    train.main(["--config", str(conf), "--dir", str(full)])
    steps_per_epoch = int(read_csv(full / "train_log.csv")[0]["step"])
    stop = steps_per_epoch + 2            # in the middle of epoch 2, not on a checkpoint step
    assert stop % 3 != 0 and stop < 2 * steps_per_epoch
    train.main(["--config", str(conf), "--dir", str(split), "--stop-after-steps", str(stop)])
    assert not (split / "final.pt").exists()
    ck = torch.load(split / "checkpoints" / "last.pt", weights_only=False)
    assert (ck["epoch"], ck["batch"], ck["step"]) == (1, 2, stop)
    # a changed model or alignment set cannot silently resume from this checkpoint
    with pytest.raises(ValueError, match="checkpoint has model_kwargs="):
        train.main(["--config", str(conf), "--dir", str(split), "--resume",
                    "--model_kwargs.width", "16"])
    train.main(["--config", str(conf), "--dir", str(split), "--resume"])
    a = torch.load(full / "final.pt", weights_only=False)["state_dict"]
    b = torch.load(split / "final.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the logs agree too (epoch statistics carried across the stop)
    ra, rb = read_csv(full / "train_log.csv"), read_csv(split / "train_log.csv")
    for x, y in zip(ra, rb):
        assert x["train_loss"] == y["train_loss"] and x["cv_frame_acc"] == y["cv_frame_acc"]


def test_two_process_ddp_gloo_ranks_agree_and_loss_falls(corpus, tmp_path):
    conf = write_conf(tmp_path, corpus, batch_size=4)
    out = tmp_path / "ddp"
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "asr.train",
           "--config", str(conf), "--dir", str(out), "--epochs", "3", "--dump_rank_states", "true"]
    res = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    s0 = torch.load(out / "rank0_state.pt", weights_only=True)
    s1 = torch.load(out / "rank1_state.pt", weights_only=True)
    assert s0.keys() == s1.keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    final = torch.load(out / "final.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(final[k], s0[k]) for k in s0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    steps = read_csv(out / "train_steps.csv")
    first, last = float(steps[0]["loss"]), np.mean([float(r["loss"]) for r in steps[-3:]])
    assert last < 0.8 * first
    # rank 0 alone logs: one CSV row per epoch, one progress line per epoch from rank 0
    assert len(read_csv(out / "train_log.csv")) == 3
    assert res.stderr.count("epoch 1: train loss") == 1


def test_unknown_config_key_is_an_error(corpus, tmp_path):
    conf = write_conf(tmp_path, corpus)
    with pytest.raises(ValueError, match="unknown config key 'batchsize'"):
        train.main(["--config", str(conf), "--dir", str(tmp_path / "x"), "--batchsize", "3"])


def test_second_training_in_the_same_dir_is_refused(corpus, tmp_path):
    import fcntl

    conf = write_conf(tmp_path, corpus)
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".lock", "a") as held:  # another process training here
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run([sys.executable, "-m", "asr.train", "--config", str(conf), "--dir", str(out)],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode != 0 and "another training process" in proc.stderr
    assert not (out / "checkpoints" / "last.pt").exists()


def _poison(corpus, utt: str, value=np.nan) -> None:
    """Rewrite the corpus' feats.ark with NaN/inf in two frames of `utt` (cmvn.scp left as is)."""
    import kaldiio

    feat_dir = corpus["feat_dir"]
    feats = {u: m.copy() for u, m in corpus["feats"].items()}
    feats[utt][3:5, 1] = value
    with kaldiio.WriteHelper(f"ark,scp:{feat_dir}/data/feats.ark,{feat_dir}/feats.scp") as w:
        for u in sorted(feats):
            w(u, feats[u])


def test_nan_features_stop_training_naming_the_utterance(corpus, tmp_path):
    """Issue 17 item 9: NaN features used to train to a final.pt full of NaN and exit 0."""
    victim = sorted(corpus["feats"])[5]
    _poison(corpus, victim)
    conf = write_conf(tmp_path, corpus)
    with pytest.raises(ValueError, match=f"utterance '{victim}': 2 of .* NaN/inf"):
        train.main(["--config", str(conf), "--dir", str(tmp_path / "am")])
    assert not (tmp_path / "am" / "final.pt").exists()


def test_nan_in_cmvn_stats_names_the_poisoning_utterance(corpus, tmp_path):
    import kaldiio

    victim = sorted(corpus["feats"])[2]          # not the first utterance of its speaker
    _poison(corpus, victim, np.inf)
    feat_dir = corpus["feat_dir"]
    feats = dict(kaldiio.load_scp(str(feat_dir / "feats.scp")))
    spk = corpus["utt2spk"][victim]
    st = dict(kaldiio.load_scp(str(feat_dir / "cmvn.scp")))
    m = np.concatenate([feats[u] for u in sorted(feats) if corpus["utt2spk"][u] == spk]).astype(np.float64)
    st[spk] = st[spk].copy()
    st[spk][0, :-1] = m.sum(0)                    # the stats compute-cmvn-stats would give: inf
    with kaldiio.WriteHelper(f"ark,scp:{feat_dir}/data/cmvn.ark,{feat_dir}/cmvn.scp") as w:
        for s in sorted(st):
            w(s, st[s])
    conf = write_conf(tmp_path, corpus)
    with pytest.raises(ValueError, match=f"speaker '{spk}'.*NaN/inf features: {victim}"):
        train.main(["--config", str(conf), "--dir", str(tmp_path / "am")])


def test_diverged_weights_are_never_written_as_final_model(corpus, tmp_path):
    """A non-finite loss (here: lr 1e30) must not leave a final.pt that stage 3 would mark done."""
    conf = write_conf(tmp_path, corpus, lr=1e30, clip_grad_norm=0.0, epochs=1)
    out = tmp_path / "am"
    with pytest.raises(FloatingPointError, match="not finite.*final.pt is not written"):
        train.main(["--config", str(conf), "--dir", str(out)])
    assert not (out / "final.pt").exists() and not (out / "summary.json").exists()


def test_truncated_checkpoint_is_named_and_stale_tmp_removed(corpus, tmp_path):
    """Issue 17 item 17: a truncated last.pt gave a bare torch error; .tmp files of a killed write stayed."""
    conf = write_conf(tmp_path, corpus)
    out = tmp_path / "am"
    train.main(["--config", str(conf), "--dir", str(out), "--stop-after-steps", "4"])
    last = out / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    stale = [out / "checkpoints" / ".last.pt.abc123.tmp", out / ".summary.json.xyz.tmp"]
    for f in stale:
        f.write_bytes(b"half a write")
    with pytest.raises(ValueError, match=f"{last}: cannot read the checkpoint.*truncated"):
        train.main(["--config", str(conf), "--dir", str(out), "--resume"])
    assert not any(f.exists() for f in stale)


def test_tag_selects_model_and_records_hparams(corpus, tmp_path):
    """One train.yaml: `--tag` picks a registered model or a `models:` entry; an override of a
    structural kwarg shows in the tag; hparams land in final.pt and summary.json."""
    conf = write_conf(tmp_path, corpus, epochs=1,
                      models={"bl_a3": {"model": "bl_resnet22_a2_b3", "model_kwargs": {"alpha": 3}}})
    out = tmp_path / "am_bl_a3"
    train.main(["--config", str(conf), "--dir", str(out), "--tag", "bl_a3"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "bl_resnet22_a2_b3" and summary["tag"] == "bl_resnet22_a2_b3-alpha3"
    hp = summary["hparams"]
    assert (hp["alpha"], hp["beta"], hp["bl_stages"], hp["merge"]) == (3, 3, 3, "add")
    assert hp["branches"] == [2, 2, 2] and hp["widths"] == [8, 8, 8, 8]
    final = torch.load(out / "final.pt", weights_only=False)
    assert final["hparams"] == hp and final["tag"] == summary["tag"]
    out2 = tmp_path / "am_plain"
    train.main(["--config", str(conf), "--dir", str(out2), "--tag", "bl_resnet22_a4_b1_cat"])
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["tag"] == "bl_resnet22_a4_b1_cat" and s2["hparams"]["merge"] == "cat"
    with pytest.raises(ValueError, match="tag 'nosuch'"):
        train.main(["--config", str(conf), "--dir", str(tmp_path / "x"), "--tag", "nosuch"])
    assert (out / "log" / "train.log").read_text().count("done: bl_resnet22_a2_b3-alpha3") == 1


def test_am_tags_all_means_the_seven_table3_models(capsys):
    from asr.models import list_models

    assert train.main(["tags", "bl_resnet22_a2_b3 all"]) == 0
    tags = capsys.readouterr().out.split()
    assert len(tags) == 7 and set(tags) == set(list_models("speech"))
    assert tags[0] == "bl_resnet22_a2_b3" and tags[1] == "resnet22" and "bl_pyr_resnet22_a4_b1" in tags

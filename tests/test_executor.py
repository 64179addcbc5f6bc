"""asr.executor on real engines: a Dask LocalCluster (2 worker processes, 127.0.0.1) runs the
features, GMM alignment and decoding stages of the tiny corpus with the same bytes as --cmd local;
killed workers; finished jobs skipped on a re-run; the SLURM job script from conf/cluster.yaml."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import kaldi_hmm_gmm  # noqa: F401  (the Kaldi bindings before kaldilm, see dependencies.md)
import pytest
import torch

from asr import executor as E

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "egs" / "synth" / "conf" / "tiny"


@pytest.fixture(scope="module")
def cluster():
    """A Dask scheduler and 2 single-threaded worker processes on 127.0.0.1: `dask://HOST:PORT`."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, worker_dashboard_address=None) as lc, \
            Client(lc, set_as_default=False) as client:
        yield "dask://" + lc.scheduler_address.removeprefix("tcp://"), client


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    """Files of dirs `a` and `b` equal byte for byte (paths of `a` inside them read as `b`'s)."""
    for name in names:
        fa, fb = a / name, b / name
        assert fa.is_file(), fa
        da, db = fa.read_bytes(), fb.read_bytes()
        assert da.replace(str(a.resolve()).encode(), str(b.resolve()).encode()) == db, f"{name} differs"


def _same_lattices(a: Path, b: Path) -> None:
    """lat.ark of decode dirs `a` and `b` hold the same lattices up to the numbering of states and
    the order of arcs: Kaldi's LatticeSimpleDecoder numbers the states of a raw lattice in the
    iteration order of its token hash map, which depends on what the decoder object decoded before
    in that process (so already `--cmd local --nj 1` and `--nj 2` write other bytes)."""
    import numpy as np

    from asr import lattice as L

    la, lb = dict(L.read_lattices(a / "lat.scp")), dict(L.read_lattices(b / "lat.scp"))
    assert list(la) == list(lb) and la
    for u in la:
        x, y = la[u], lb[u]
        assert x.num_states == y.num_states and len(x.arcs) == len(y.arcs), u
        arcs = [np.sort(np.stack([z.arcs[f].astype(np.float64) for f in ("ilabel", "olabel", "graph", "acoustic")], 1)
                        .view([("", np.float64)] * 4), axis=0) for z in (x, y)]
        assert np.array_equal(arcs[0], arcs[1]), u
        finals = [np.sort(z.final.view([("", z.final.dtype)] * 2).ravel()) for z in (x, y)]
        assert np.array_equal(finals[0], finals[1]), u


def _feature_files(d: Path) -> list[str]:
    return ["feats.scp", "utt2num_frames", "cmvn.ark", "cmvn.scp", "feat_dim"] + \
        sorted(str(p.relative_to(d)) for p in (d / "data").glob("feats.*.ark"))


@pytest.fixture(scope="module")
def stages(synth_corpus, tmp_path_factory, cluster):
    """Features (mfcc, logmel), GMM training with its alignments, and decoding of the tiny corpus,
    each once with --cmd local (--nj 2) and once through the Dask cluster."""
    from asr import decode as D
    from asr.features import FeatureConfig, extract
    from asr.gmm import GmmConfig, train_all
    from asr.graph import make_g, make_hclg, train_lm
    from asr.lang import prepare_lang, read_symbol_table
    from asr.models import create_model

    cmd, _ = cluster
    root = tmp_path_factory.mktemp("executor")
    runs = {"local": ("local", root / "local"), "dask": (cmd, root / "dask")}
    times = {}
    # stage 1: features
    for name, (c, d) in runs.items():
        t0 = time.perf_counter()
        for kind, sets in (("mfcc", ("train",)), ("logmel", ("train", "test"))):
            cfg = FeatureConfig.load(kind, TINY / "features.yaml", batch_size=3)
            for s in sets:
                extract(synth_corpus[s], d / f"{s}_{kind}", cfg, nj=2, cmd=c)
        times[f"features_{name}"] = time.perf_counter() - t0
    # stage 2: lang + GMMs; every alignment pass goes through --cmd
    lang = root / "lang"
    prepare_lang(synth_corpus["dict_dir"], lang)
    for name, (c, d) in runs.items():
        t0 = time.perf_counter()
        cfg = GmmConfig.from_yaml(TINY / "gmm.yaml")
        cfg.nj, cfg.cmd = 2, c
        train_all(synth_corpus["train"], d / "train_mfcc", lang, d / "exp", cfg)
        times[f"gmm_{name}"] = time.perf_counter() - t0
    # stage 5: decoding (graph from the local tri2; an untrained but fixed network)
    local = runs["local"][1]
    train_lm(synth_corpus["train"] / "text", root / "lm.arpa", 2, set(read_symbol_table(lang / "words.txt")))
    make_g(lang, root / "lm.arpa", root / "lang_test")
    make_hclg(root / "lang_test", local / "exp" / "tri2", root / "graph")
    num_pdfs = int((local / "exp" / "tri2" / "num_pdfs").read_text())
    torch.manual_seed(0)
    kw = {"num_classes": num_pdfs, "in_bins": 40, "width": 4, "head_dim": 8}
    m = create_model("resnet22", **kw)
    am = root / "am"
    am.mkdir()
    torch.save({"model_name": "resnet22", "model_kwargs": kw, "state_dict": m.state_dict(), "num_pdfs": num_pdfs,
                "feat_dim": 120, "context": list(m.context)}, am / "final.pt")
    (am / "pdf_counts").write_text("[ " + " ".join(str(i % 7 + 1) for i in range(num_pdfs)) + " ]\n")

    def decode_cfg(feats: Path) -> D.DecodeConfig:
        return D.DecodeConfig(str(am), str(root / "graph"), str(feats), 0.1,
                              D.SearchOptions(beam=9.0, max_active=1000, min_active=50, lattice_beam=4.0),
                              chunk_frames=64, batch_frames=256, lm_weights=[8, 12], nbest=2,
                              lexicon=str(synth_corpus["dict_dir"] / "lexicon.txt"))

    for name, (c, d) in runs.items():
        t0 = time.perf_counter()
        D.decode_dir(decode_cfg(local / "train_logmel"), d / "decode_train", nj=2, cmd=c)
        times[f"decode_{name}"] = time.perf_counter() - t0
    print({k: round(v, 2) for k, v in times.items()})
    return {"local": local, "dask": runs["dask"][1], "cmd": cmd, "decode_cfg": decode_cfg, "root": root,
            "synth": synth_corpus}


def test_features_through_dask_are_byte_identical(stages):
    from asr.features import FeatureConfig, extract

    local, dask = stages["local"], stages["dask"]
    for d in ("train_mfcc", "train_logmel", "test_logmel"):
        names = _feature_files(local / d)
        assert len(names) == 5 + (3 if d.startswith("train") else 1)  # 9 or 2 utterances, 3 per job
        _same_files(local / d, dask / d, names)
        logs = sorted((dask / d / "log").glob("make_*.log"))
        assert len(logs) == len(names) - 5 and all("# Ended (code 0)" in p.read_text() for p in logs)
    # the command line (`python -m asr.features`: job functions and configs live in __main__)
    cli = stages["root"] / "cli_test_logmel"
    proc = subprocess.run([sys.executable, "-m", "asr.features", "compute", "--kind", "logmel", "--config",
                           str(TINY / "features.yaml"), "--batch-size", "1", "--cmd", stages["cmd"],
                           "--data", str(stages["synth"]["test"]), "--out", str(cli)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = stages["root"] / "ref_test_logmel"
    extract(stages["synth"]["test"], ref, FeatureConfig.load("logmel", TINY / "features.yaml", batch_size=1))
    _same_files(ref, cli, _feature_files(ref))


def test_gmm_alignments_through_dask_are_byte_identical(stages):
    local, dask = stages["local"] / "exp", stages["dask"] / "exp"
    for model in ("mono", "tri1", "tri2"):
        _same_files(local / model, dask / model, ["final.mdl", "tree", "ali.ark", "pdf_ali.ark"])
        assert list((dask / model / "log").glob("align.final.1.log"))
    ali = [p.name for p in local.glob("*_ali")]
    assert ali
    _same_files(local / ali[0], dask / ali[0], ["final.mdl", "ali.ark", "pdf_ali.ark"])


def test_decode_through_dask_is_byte_identical(stages):
    local, dask = stages["local"] / "decode_train", stages["dask"] / "decode_train"
    names = ["hyp.txt", "ali.ark", "ali.scp", "lat.scp", "nbest.txt", "nbest_cost.txt",
             "hyp_lmwt8_wip0.txt", "hyp_lmwt12_wip0.txt", "hyp.ctm", "hyp_lmwt8_wip0.ctm", "hyp_lmwt12_wip0.ctm"]
    _same_files(local, dask, names)
    _same_lattices(local, dask)
    assert (local / "lat.ark").stat().st_size > 0 and (local / "hyp.ctm").read_text().strip()
    assert len(list(dask.glob("log/decode.*.log"))) == 8  # 4 x nj jobs over 9 utterances
    assert not list(dask.glob("log/decode.*.done"))  # complete: no records left
    # --cmd local --nj 1 (one job in this process, as before --cmd) gives the same bytes
    one = stages["root"] / "decode_nj1"
    from asr import decode as D

    D.decode_dir(stages["decode_cfg"](stages["local"] / "train_logmel"), one, nj=1)
    _same_files(local, one, names)
    _same_lattices(local, one)


def test_killed_dask_worker_mid_decode(stages, cluster):
    """SIGKILL the worker running the first decoding job: the stage completes, same bytes."""
    from asr import decode as D

    cmd, client = cluster
    out = stages["root"] / "decode_killed"
    pids = set(client.run(os.getpid).values())
    err: list[BaseException] = []

    def run() -> None:
        try:
            D.decode_dir(stages["decode_cfg"](stages["local"] / "train_logmel"), out, nj=2, cmd=cmd)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            err.append(e)

    th = threading.Thread(target=run)
    th.start()
    killed = None
    deadline = time.time() + 60
    while killed is None and th.is_alive() and time.time() < deadline:
        for log in sorted((out / "log").glob("decode.*.log")):
            head = log.read_text().split("\n", 1)[0]
            if " pid " in head:  # a job has started (its model is still loading): kill its worker
                killed = int(head.rsplit(" pid ", 1)[1])
                assert killed in pids
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.005)
    th.join(timeout=120)
    assert killed is not None, "no job started"
    assert not th.is_alive() and not err, err
    _same_files(stages["local"] / "decode_train", out, ["hyp.txt", "ali.ark", "ali.scp", "lat.scp",
                                                        "nbest.txt", "hyp.ctm"])
    _same_lattices(stages["local"] / "decode_train", out)
    # the job it was running was run again elsewhere: two starts in its log, then a clean end
    rerun = [p.read_text() for p in (out / "log").glob("decode.*.log") if p.read_text().count("# Started") == 2]
    assert len(rerun) == 1 and f" pid {killed}\n" in rerun[0].split("# Started", 1)[0], rerun
    assert rerun[0].rstrip().splitlines()[-1].startswith("# Ended (code 0)"), rerun[0]
    assert len(list((out / "log").glob("decode.*.log"))) == 8
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def _die_once(marker: str, x: int) -> int:
    """SIGKILLs its own process the first time (per marker file), then returns x * x."""
    if not os.path.exists(marker):
        Path(marker).write_text("died\n")
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


@pytest.mark.parametrize("where", ["local", "dask"])
def test_job_whose_worker_dies_is_retried(where, cluster, tmp_path):
    cmd = cluster[0] if where == "dask" else "local"
    jobs = [(str(tmp_path / f"m{i}"), i) for i in range(4)]
    (tmp_path / "m0").write_text("")  # job 1 does not die
    assert E.run_jobs(_die_once, jobs, cmd, nj=2, stage="sq", log_dir=tmp_path / "log") == [0, 1, 4, 9]
    for i in range(1, 4):
        assert (tmp_path / f"m{i}").exists()
    assert E.run_jobs(math.factorial, [(3,)], cmd, nj=2) == [6]


def test_killed_features_run_is_resumed(synth_corpus, tmp_path):
    """`python -m asr.features` SIGKILLed after some jobs finished leaves its staging dir; a re-run
    takes it over, runs only the jobs not done (and one whose archive was lost) and gives the same
    bytes as an uninterrupted run; the finished dir keeps the per-job logs, not the records."""
    from asr.features import FeatureConfig, extract

    ref = tmp_path / "ref_mfcc"
    extract(synth_corpus["train"], ref, FeatureConfig.load("mfcc", TINY / "features.yaml", batch_size=1))
    out = tmp_path / "train_mfcc"
    cmd = [sys.executable, "-m", "asr.features", "compute", "--kind", "mfcc", "--config", str(TINY / "features.yaml"),
           "--batch-size", "1", "--data", str(synth_corpus["train"]), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = tmp_path / f".train_mfcc.tmp-{proc.pid}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (staging / "log" / "make_mfcc.1.done").exists():
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    assert staging.is_dir() and not out.exists(), "the run ended before it could be killed"
    done = sorted(int(p.name.split(".")[1]) for p in (staging / "log").glob("make_mfcc.*.done"))
    assert 1 in done and len(done) < 9, done
    (staging / "data" / "feats.0.ark").unlink()  # job 1 lost its output: it is run again
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming the finished jobs of" in res.stderr
    assert not staging.exists() and not list(tmp_path.glob(".train_mfcc.*"))
    _same_files(ref, out, _feature_files(ref))
    starts = {int(p.name.split(".")[1]): p.read_text().count("# Started") for p in (out / "log").glob("make_mfcc.*.log")}
    assert sorted(starts) == list(range(1, 10))
    assert starts[1] == 2  # its archive was lost
    for j in done[1:]:  # finished before the kill: not run again
        assert starts[j] == 1, (j, starts)
    for j in set(starts) - set(done):  # not finished: run (again, if the kill came mid-job)
        assert starts[j] in (1, 2), (j, starts)
    for j in starts:
        assert (out / "log" / f"make_mfcc.{j}.log").read_text().rstrip().splitlines()[-1].startswith("# Ended (code 0)")
    assert not list((out / "log").glob("*.done"))
    # a later run with other options computes every job afresh
    extract(synth_corpus["train"], out, FeatureConfig.load("mfcc", TINY / "features.yaml", batch_size=1,
                                                           num_mel_bins=20))
    assert "num_mel_bins: 20" in (out / "feature_config.yaml").read_text()


def test_job_error_is_raised_with_its_type_and_logged(tmp_path):
    with pytest.raises(ValueError, match="math domain error"):
        E.run_jobs(math.sqrt, [(4.0,), (-1.0,)], "local", nj=2, stage="sqrt", log_dir=tmp_path)
    assert "ValueError: math domain error" in (tmp_path / "sqrt.2.log").read_text()
    assert (tmp_path / "sqrt.1.done").exists() and not (tmp_path / "sqrt.2.done").exists()


def test_cmd_values():
    assert E.parse_cmd("local") == ("local", "")
    assert E.parse_cmd("dask://10.0.0.5:8786") == ("dask", "tcp://10.0.0.5:8786")
    assert E.parse_cmd("slurm") == ("slurm", "")
    for bad in ("dask://nohost", "queue.pl", "ssh"):
        with pytest.raises(ValueError, match="--cmd"):
            E.parse_cmd(bad)


def test_slurm_job_script_from_cluster_yaml(tmp_path):
    """dask-jobqueue's SLURM job script carries the partition, cores and memory of conf/cluster.yaml
    (no sbatch is run: a scheduler on 127.0.0.1 only)."""
    import yaml

    conf = yaml.safe_load((ROOT / "conf" / "cluster.yaml").read_text())
    conf["slurm"].update(queue="gpu-test", scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
                         log_directory=str(tmp_path / "dask-logs"))
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(conf))
    cluster, workers = E.make_jobqueue_cluster("slurm", 6, tmp_path / "cluster.yaml")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert workers == 6
    assert "#SBATCH -p gpu-test" in script and "#SBATCH --cpus-per-task=4" in script
    assert "#SBATCH --mem=15G" in script or "#SBATCH --mem=16G" in script, script
    assert f". {ROOT / 'path.sh'}" in script and "--nworkers 4" in script, script


def test_many_alignment_jobs_through_dask(stages, synth_corpus):
    """asr.gmm.align with 8 jobs (45 utterances: the 9 of the corpus under 5 names each) on the
    cluster: the same alignments and likelihood as forked local jobs."""
    import numpy as np

    from asr import gmm
    from asr.lang import load_lang

    exp, lang = stages["local"] / "exp", stages["root"] / "lang"
    tm, am = gmm.load_model(exp / "tri1" / "final.mdl")
    texts = gmm.read_text(synth_corpus["train"])
    graphs, failed = gmm.compile_graphs(tm, gmm.read_tree(exp / "tri1" / "tree"), lang, load_lang(lang), texts)
    feats = gmm.load_features(stages["local"] / "train_mfcc")
    assert not failed
    many_g = {f"{u}-{k}": graphs[u] for u in graphs for k in range(5)}
    many_f = {f"{u}-{k}": feats[u] for u in graphs for k in range(5)}
    out = {}
    for cmd in ("local", stages["cmd"]):
        cfg = gmm.GmmConfig.from_yaml(TINY / "gmm.yaml")
        cfg.nj, cfg.cmd = 2, cmd
        log_dir = stages["root"] / f"many_{cmd.split(':')[0]}"
        out[cmd] = gmm.align(am, tm, many_g, many_f, cfg, log_dir=log_dir)
        assert len(list(log_dir.glob("align.*.log"))) == 8
    (ali_l, bad_l, like_l), (ali_d, bad_d, like_d) = out.values()
    assert bad_l == bad_d and sorted(ali_l) == sorted(ali_d)
    assert len(ali_l) + len(bad_l) == 45 and len(ali_l) >= 40  # (copies of one utterance may fail together)
    assert all(np.array_equal(ali_l[u], ali_d[u]) for u in ali_l)
    assert like_l == like_d

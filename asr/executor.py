"""Parallel jobs of the stages on this machine or a cluster: the role of Kaldi's `cmd.sh`.

`--cmd` of every parallel stage (features, GMM alignment, decoding) names where its jobs run:

    local             processes forked on this machine (the default; `--nj` of them)
    dask://HOST:PORT  a running Dask distributed scheduler (`dask scheduler` + `dask worker`s)
    slurm | pbs | sge a Dask cluster that dask-jobqueue submits as batch jobs, with the queue
                      (partition), cores, memory ... of that section of `conf/cluster.yaml`

`get_executor` gives a `concurrent.futures.Executor` for any of them (Dask's client executor
off this machine), so code that takes an executor (lhotse's `compute_and_store_features`) runs
on a cluster unchanged. `run_jobs` runs a stage's jobs on one:

- a job is a pure function of its (picklable) arguments; whatever it writes to the shared exp
  dir it writes atomically (`asr.utils.atomic_path`), and it returns its result;
- with a `log_dir`, job j logs to `<log_dir>/<stage>.<j>.log` (j from 1, as Kaldi's JOB) and its
  result is kept in `<log_dir>/<stage>.<j>.done` (atomic pickle, keyed by a digest of the
  job's arguments and input files): a re-run of the stage skips the jobs already done (a stage
  removes them with `remove_done_records` once its outputs are complete);
- a job whose worker died (killed, out of memory, node lost) is run again, up to `retries`
  times; an exception raised by the job itself (bad input) is not retried but re-raised;
- results come back in job order, so outputs do not depend on where or in what order jobs ran.
"""

from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import contextlib
import copyreg
import hashlib
import io
import logging
import multiprocessing as mp
import os
import pickle
import socket
import sys
import tempfile
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from asr.utils import LOG_FORMAT, atomic_path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster"}


class JobError(RuntimeError):
    """A job could not be completed (its worker died more often than allowed)."""


def parse_cmd(cmd: str) -> tuple[str, str]:
    """`--cmd` value -> (kind, argument): ("local", ""), ("dask", "tcp://HOST:PORT"), ("slurm", "")."""
    cmd = (cmd or "local").strip()
    if cmd == "local":
        return "local", ""
    for prefix in ("dask://", "tcp://"):
        if cmd.startswith(prefix):
            addr = cmd[len(prefix):]
            if ":" not in addr:
                raise ValueError(f"--cmd {cmd}: expected dask://HOST:PORT")
            return "dask", "tcp://" + addr
    if cmd in CLUSTER_KINDS:
        return cmd, ""
    raise ValueError(f"--cmd {cmd!r}: expected local, dask://HOST:PORT, {', '.join(CLUSTER_KINDS)}")


def is_local(cmd: str) -> bool:
    """True when jobs run in processes forked from this one (they see its memory)."""
    return parse_cmd(cmd)[0] == "local"


class SerialExecutor(cf.Executor):
    """Runs each job in this process at `submit` (`--cmd local --nj 1`)."""

    def submit(self, fn, /, *args, **kwargs):
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut


def load_cluster_config(kind: str, path: str | os.PathLike | None = None) -> dict:
    """The `kind:` section of conf/cluster.yaml (or `path`): keyword arguments of the
    dask-jobqueue cluster class, plus `workers` (how many worker processes to ask for)."""
    import yaml

    path = Path(path or os.environ.get("ASR_CLUSTER_CONFIG", REPO_ROOT / "conf" / "cluster.yaml"))
    raw = yaml.safe_load(path.read_text()) or {}
    if kind not in raw:
        raise ValueError(f"{path}: no section '{kind}:' for --cmd {kind}")
    return dict(raw[kind] or {})


def make_jobqueue_cluster(kind: str, nj: int, config: str | os.PathLike | None = None):
    """A dask-jobqueue cluster of `kind` (not yet scaled) and the number of workers to ask for."""
    import dask_jobqueue

    opts = load_cluster_config(kind, config)
    workers = int(opts.pop("workers", 0) or nj)
    # the workers import this checkout (a shared file system): its environment first
    opts["job_script_prologue"] = [f". {REPO_ROOT / 'path.sh'}", *opts.get("job_script_prologue", [])]
    cluster = getattr(dask_jobqueue, CLUSTER_KINDS[kind])(**opts)
    return cluster, max(1, workers)


@contextlib.contextmanager
def get_executor(cmd: str = "local", nj: int = 1, *, config: str | os.PathLike | None = None
                 ) -> Iterator[cf.Executor]:
    """A `concurrent.futures.Executor` for `--cmd` (closed on exit).

    local: a pool of `nj` forked processes (in this process when nj <= 1); dask://HOST:PORT: the
    executor of a client of that scheduler; slurm/pbs/sge: a dask-jobqueue cluster (options from
    `config`, default conf/cluster.yaml) scaled to `nj` workers (or the section's `workers`).
    """
    kind, addr = parse_cmd(cmd)
    if kind == "local":
        ex = SerialExecutor() if nj <= 1 else cf.ProcessPoolExecutor(nj, mp_context=mp.get_context("fork"))
        try:
            yield ex
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import Client

    cluster = None
    if kind == "dask":
        client = Client(addr, set_as_default=False, timeout="60s")
    else:
        cluster, workers = make_jobqueue_cluster(kind, nj, config)
        log.info("%s: asking for %d worker(s); job script:\n%s", kind, workers, cluster.job_script())
        cluster.scale(workers)
        client = Client(cluster, set_as_default=False)
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------------
# pickling for binding types without it (jobs that leave this machine carry their data)
def _fst_from_bytes(data: bytes):
    import kaldifst

    with tempfile.NamedTemporaryFile(suffix=".fst") as f:
        f.write(data)
        f.flush()
        return kaldifst.StdVectorFst.read(f.name)


def _reduce_fst(fst):
    with tempfile.NamedTemporaryFile(suffix=".fst") as f:
        if not fst.write(f.name):
            raise pickle.PicklingError("kaldifst: could not write an FST")
        return _fst_from_bytes, (Path(f.name).read_bytes(),)


def register_picklers() -> None:
    """Let `kaldifst.StdVectorFst` (no pickle support of its own) travel to remote workers as
    its OpenFst file bytes. Only if kaldifst is already imported (never imports a Kaldi ABI group)."""
    kf = sys.modules.get("kaldifst")
    if kf is not None and kf.StdVectorFst not in copyreg.dispatch_table:
        copyreg.pickle(kf.StdVectorFst, _reduce_fst)


# ------------------------------------------------------------------------------------------------
# jobs
def job_key(fn: Callable, args: tuple, inputs: Sequence[str | os.PathLike] = ()) -> str:
    """Digest of a job: its function, pickled arguments and the size/mtime of its input files."""
    h = hashlib.sha256(f"{fn.__module__}.{fn.__qualname__}".encode())
    register_picklers()
    h.update(pickle.dumps(args, protocol=4))
    for p in inputs:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()


def _read_done(path: Path, key: str) -> tuple[bool, Any]:
    try:
        with open(path, "rb") as f:
            rec = pickle.load(f)
    except FileNotFoundError:
        return False, None
    except Exception as e:  # noqa: BLE001 - an unreadable record is redone, never trusted
        log.warning("%s: unreadable (%s): the job is run again", path, e)
        return False, None
    if not isinstance(rec, dict) or rec.get("key") != key:
        return False, None  # from other arguments or inputs: redo
    return True, rec["result"]


def _run_job(fn: Callable, args: tuple, name: str, log_dir: str | None, key: str | None) -> Any:
    """Worker side of one job: log to `<log_dir>/<name>.log`, run, keep the result in `<name>.done`
    (unless `key` is None)."""
    if log_dir is None:
        return fn(*args)
    log_path = Path(log_dir) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    tid = threading.get_ident()
    handler.addFilter(lambda r: r.thread == tid)  # this job's records only (dask runs jobs in threads)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    t0 = time.time()
    try:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"# {fn.__module__}.{fn.__qualname__} (job {name}) on {socket.gethostname()} "
                    f"pid {os.getpid()}\n# Started at {time.strftime('%c')}\n")
        handler.flush()
        try:
            result = fn(*args)
        except BaseException:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(traceback.format_exc())
                f.write(f"# Accounting: time={time.time() - t0:.0f} threads=1\n"
                        f"# Ended (code 1) at {time.strftime('%c')}, elapsed time {time.time() - t0:.0f} seconds\n")
            raise
        if key is not None:
            with atomic_path(Path(log_dir) / f"{name}.done") as tmp:
                with open(tmp, "wb") as f:
                    pickle.dump({"key": key, "result": result}, f, protocol=pickle.HIGHEST_PROTOCOL)
        handler.flush()
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"# Accounting: time={time.time() - t0:.0f} threads=1\n"
                    f"# Ended (code 0) at {time.strftime('%c')}, elapsed time {time.time() - t0:.0f} seconds\n")
        return result
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _main_module() -> str | None:
    """The importable name of `__main__` when it runs as `python -m asr.x` (else None)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None)


def _import_attr(module: str, qualname: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _JobPickler(pickle.Pickler):
    """Pickles the functions and classes of a `python -m asr.x` main module by their module name,
    so that remote workers (which have another `__main__`) find them."""

    def reducer_override(self, obj):
        if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == "__main__":
            module = _main_module()
            if module and module != "__main__":
                return _import_attr, (module, obj.__qualname__)
        return NotImplemented


def dumps_job(obj: Any) -> bytes:
    """Pickle of a job for a remote worker (Kaldi FSTs as bytes, `__main__` names made importable)."""
    register_picklers()
    buf = io.BytesIO()
    _JobPickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


def _run_pickled(blob: bytes) -> Any:
    """`_run_job` of a job pickled on the client: the scheduler passes bytes on and never unpickles
    (so never imports) what a job carries, e.g. Kaldi FSTs."""
    return _run_job(*pickle.loads(blob))


def _worker_died(exc: BaseException) -> bool:
    """True for the failures of a worker (not of the job): a dead pool process, a lost Dask worker."""
    if isinstance(exc, BrokenProcessPool):
        return True
    names = {type(exc).__name__} | {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"KilledWorker", "CommClosedError", "FutureCancelledError"})


def run_jobs(fn: Callable, jobs: Sequence[tuple], cmd: str = "local", nj: int = 1, *,
             stage: str = "job", log_dir: str | os.PathLike | None = None,
             inputs: Sequence[str | os.PathLike] = (), outputs: Callable[[int], Sequence[os.PathLike]] | None = None,
             retries: int = 2, resume: bool = True, config: str | os.PathLike | None = None,
             keys: Sequence[Any] | None = None) -> list:
    """`[fn(*job) for job in jobs]`, run on `--cmd` with `nj` parallel jobs; results in job order.

    log_dir: per-job logs `<log_dir>/<stage>.<j>.log` and result records `<stage>.<j>.done`
    (j = 1..len(jobs)); a job whose record matches its arguments and the size/mtime of `inputs`,
    and whose `outputs(j - 1)` files all exist, is not run again. resume=False: logs only, no
    records (results that live in memory only, e.g. the alignments of one GMM iteration).
    retries: how often a job whose worker died is resubmitted. Exceptions raised by `fn`
    propagate unchanged. keys: what identifies job j in its record instead of its arguments (e.g.
    the arguments without a temporary dir's name that a resumed run sees under another name).
    """
    jobs = [tuple(j) for j in jobs]
    results: list = [None] * len(jobs)
    todo: list[int] = []
    if keys is not None and len(keys) != len(jobs):
        raise ValueError(f"{stage}: {len(keys)} keys for {len(jobs)} jobs")
    digests: list[str | None] = [None] * len(jobs)
    ldir = None if log_dir is None else str(Path(log_dir).resolve())
    for i, args in enumerate(jobs):
        if ldir is not None and resume:
            digests[i] = job_key(fn, args if keys is None else tuple(keys[i]), inputs)
            done, res = _read_done(Path(ldir) / f"{stage}.{i + 1}.done", digests[i])
            if done and all(Path(p).exists() for p in (outputs(i) if outputs else ())):
                results[i] = res
                continue
        todo.append(i)
    if len(todo) < len(jobs):
        log.info("%s: %d of %d jobs already done (%s), running %d", stage, len(jobs) - len(todo), len(jobs),
                 ldir, len(todo))
    if not todo:
        return results
    kind = parse_cmd(cmd)[0]
    width = 1 if kind == "local" and len(todo) == 1 else nj
    if kind != "local":
        register_picklers()
    attempts = {i: 0 for i in todo}
    t0 = time.time()
    while todo:
        died: list[int] = []
        with get_executor(cmd, width, config=config) as ex:
            if kind == "local":
                futs = {ex.submit(_run_job, fn, jobs[i], f"{stage}.{i + 1}", ldir, digests[i]): i for i in todo}
            else:
                futs = {ex.submit(_run_pickled, dumps_job((fn, jobs[i], f"{stage}.{i + 1}", ldir, digests[i]))): i
                        for i in todo}
            for fut in cf.as_completed(futs):
                i = futs[fut]
                try:
                    results[i] = fut.result()
                except BaseException as e:
                    if not _worker_died(e):
                        where = f" (log: {ldir}/{stage}.{i + 1}.log)" if ldir else ""
                        log.error("%s: job %d of %d failed%s", stage, i + 1, len(jobs), where)
                        raise
                    died.append(i)
                    log.warning("%s: job %d: its worker died (%s: %s)", stage, i + 1, type(e).__name__, e)
        for i in died:
            attempts[i] += 1
            if attempts[i] > retries:
                raise JobError(f"{stage}: job {i + 1} of {len(jobs)}: its worker died {attempts[i]} times "
                               f"(--cmd {cmd}); giving up")
        todo = sorted(died)
        if todo:
            log.warning("%s: resubmitting %d job(s) whose worker died: %s", stage, len(todo),
                        " ".join(str(i + 1) for i in todo))
    log.info("%s: %d job(s) on --cmd %s in %.1f s", stage, len(attempts), cmd, time.time() - t0)
    return results


def remove_done_records(log_dir: str | os.PathLike, stage: str) -> int:
    """Delete the `<stage>.<j>.done` records of `log_dir` (a stage whose outputs are complete: a
    later run computes afresh, as without records). Returns how many there were."""
    n = 0
    for p in Path(log_dir).glob(f"{stage}.*.done"):
        if p.name[len(stage) + 1:-len(".done")].isdigit():
            p.unlink()
            n += 1
    return n

"""Recipe options and stage guards (issue 17 items 13-15, issue 16 item 7): local/parse_options.sh
refuses what it cannot honour, naming the option; `step` in local/log.sh runs a unit of work once
and removes its .done marker before a forced redo. Runs the real recipes up to option parsing,
or tiny harness scripts that source the helpers; each call takes well under a second."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"synth": ROOT / "egs" / "synth" / "run.sh", "swbd": ROOT / "egs" / "swbd" / "run.sh"}


def _env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def run(recipe: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RECIPES[recipe]), *args], capture_output=True, text=True,
                          env=_env(), timeout=60, cwd=cwd)


BAD = [
    (("--force", "yes"), "option --force takes true or false, not 'yes'"),
    (("--force", "1"), "option --force takes true or false, not '1'"),
    (("--bogus", "1"), "unknown option --bogus"),
    (("--PATH", "/x"), "unknown option --PATH"),  # a shell variable is not an option
    (("--nj", "two"), "option --nj takes a whole number, not 'two'"),
    (("--stage", "9"), "--stage must be a stage number from 0 to 7, not '9'"),
    (("--stop-stage", "100"), "--stop-stage must be a stage number from 0 to 7, not '100'"),
    (("--stage", "-1"), "option --stage takes a whole number, not '-1'"),
    (("--stage", "4", "--stop-stage", "2"), "--stage 4 is after --stop-stage 2"),
    (("--stage",), "option --stage needs a value"),
    (("--exp", "--stage", "3"), "option --exp needs a value (got option '--stage')"),
    (("exp2",), "unexpected argument 'exp2'"),
    (("--stage", "1", "extra"), "unexpected argument 'extra'"),
    (("--nj=3",), "use '--name value', not '--name=value'"),
]


@pytest.mark.parametrize("recipe", ["synth", "swbd"])
@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_options_exit_non_zero_naming_them(recipe, args, message, tmp_path):
    # (a missing conf dir: should parsing ever let a bad option through, stage 0 fails at once
    # instead of running the recipe on default dirs, as a stray argument did before)
    proc = run(recipe, "--conf-dir", str(tmp_path / "no_conf"), "--data", str(tmp_path / "data"),
               "--exp", str(tmp_path / "exp"), *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "data").exists() and not (tmp_path / "exp").exists()


@pytest.mark.parametrize("recipe", ["synth", "swbd"])
def test_help_lists_every_option_with_its_default(recipe, tmp_path):
    proc = run(recipe, "--help", cwd=tmp_path)  # from another dir too
    assert proc.returncode == 0, proc.stderr
    script = RECIPES[recipe].read_text().split("parse_options.sh")[0]
    names = [line.split("=", 1)[0] for line in script.splitlines()
             if line[:1].isalpha() and "=" in line.split()[0]]
    assert {"stage", "stop_stage", "nj", "force", "conf_dir", "data", "exp", "am_tags"} <= set(names)
    for line in script.splitlines():
        if line.split("=", 1)[0] in names:
            name, rest = line.split("=", 1)
            default = rest.split("#")[0].strip().strip('"')
            row = [r for r in proc.stdout.splitlines() if r.startswith(f"  --{name.replace('_', '-')} ")]
            assert len(row) == 1 and f'"{default}"' in row[0], (name, proc.stdout)
    assert "Stages: 0" in proc.stdout  # the recipe's own description comes first


HARNESS = """#!/usr/bin/env bash
set -euo pipefail
. {root}/local/log.sh
flag=false      # a boolean
count=3         # a number
name="a b"      # a string
empty=x         # may be set empty
. {root}/local/parse_options.sh
printf '%s|%s|%s|%s\\n' "$flag" "$count" "$name" "$empty"
"""


def _harness(tmp_path, body=HARNESS) -> Path:
    script = tmp_path / "harness.sh"
    script.write_text(body.format(root=ROOT))
    script.chmod(0o755)
    return script


def test_parse_options_sets_values(tmp_path):
    h = _harness(tmp_path)
    ok = subprocess.run([str(h), "--flag", "true", "--count", "12", "--name", "x y  z", "--empty", ""],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "true|12|x y  z|\n"
    assert subprocess.run([str(h)], capture_output=True, text=True).stdout == "false|3|a b|x\n"
    bad = subprocess.run([str(h), "--flag", "True"], capture_output=True, text=True)
    assert bad.returncode == 1 and "option --flag takes true or false, not 'True'" in bad.stderr


STEP = """#!/usr/bin/env bash
set -euo pipefail
. {root}/local/log.sh
force=false
dry_run=false
. {root}/local/parse_options.sh
_stage_now=1
work() {{ run_cmd touch "$1/ran.$2"; run_cmd bash -c "exit ${{3:-0}}"; }}
step "$PWD/.done" work "$PWD" a "${{FAIL:-0}}"
"""


def test_step_runs_once_and_a_forced_redo_drops_the_marker_first(tmp_path):
    h = _harness(tmp_path, STEP)

    def go(*args, fail=0):
        return subprocess.run([str(h), *args], capture_output=True, text=True, cwd=tmp_path,
                              env=dict(os.environ, FAIL=str(fail)))

    dry = go("--dry-run", "true")
    assert dry.returncode == 0 and "stage 1 (dry run): touch" in dry.stdout
    assert not (tmp_path / "ran.a").exists() and not (tmp_path / ".done").exists()
    first = go()
    assert first.returncode == 0 and (tmp_path / "ran.a").exists() and (tmp_path / ".done").exists()
    (tmp_path / "ran.a").unlink()
    again = go()
    assert again.returncode == 0 and "already done (--force true redoes it)" in again.stdout
    assert not (tmp_path / "ran.a").exists()
    # a forced redo that dies: the marker is gone, so a plain run redoes the step
    killed = go("--force", "true", fail=1)
    assert killed.returncode != 0 and (tmp_path / "ran.a").exists()
    assert not (tmp_path / ".done").exists()
    (tmp_path / "ran.a").unlink()
    plain = go()
    assert plain.returncode == 0 and (tmp_path / "ran.a").exists() and (tmp_path / ".done").exists()


def test_interrupted_forced_feature_stage_is_redone_by_a_plain_run(tmp_path):
    """The real recipe: `--force true` on a finished feature stage whose redo fails leaves no
    .done_feats_* marker (today the old marker stays and a plain re-run skips the stage)."""
    data = tmp_path / "data"
    data.mkdir()
    for kind in ("mfcc", "logmel"):
        (data / f".done_feats_{kind}").write_text("1\n")
    args = ("--data", str(data), "--exp", str(tmp_path / "exp"), "--stage", "1", "--stop-stage", "1")
    skipped = run("synth", *args)
    assert skipped.returncode == 0 and "already done" in skipped.stdout
    forced = run("synth", *args, "--force", "true")
    assert forced.returncode != 0 and "train/wav.scp: missing" in forced.stderr
    assert not (data / ".done_feats_mfcc").exists()

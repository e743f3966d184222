"""The SLURM profile, run for real on a one-node SLURM cluster started by the test.

A small Snakefile written here uses the workflow's own rule names, so the profile's
per-rule threads, memory, runtime and GPU settings are the ones SLURM receives; the
checks read SLURM's own job records. A last test runs the repository's workflow on
the tiny config, two datasets with two replicates each, through the same profile, and
checks in SLURM's records that its jobs ran side by side.

Skips (with the reason) where the slurm-wlm/munge binaries or root are missing; CI
installs them first with .ci/install-slurm.sh.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
import yte

from helpers import ROOT
from helpers.slurm_cluster import SlurmCluster, slurm_cluster, unavailable_reason
from helpers.workflow_copy import copy_workflow

PROFILE = ROOT / "profiles" / "slurm"
# the demo's config with the tests' changes merged over it (see tests/configs/tiny.yaml)
TINY_CONFIG = (ROOT / "config" / "config.yaml", ROOT / "tests" / "configs" / "tiny.yaml")
# Items of the repository that the workflow needs in its working directory.
SNAKEMAKE_TIMEOUT = 300  # seconds, for each small run; the tiny workflow gets longer
WORKFLOW_TIMEOUT = 1800
# First status check after this many seconds; the plugin waits 10 s longer after
# each check that finds nothing finished. A toy job here takes 5-8 s end to end.
STATUS_CHECK_SECONDS = 10
# Rules that must never become SLURM jobs.
LOCAL_RULES = (
    "download_dataset",
    "download_genesets",
    "download_orthologs",
    "summarise_model",
    "gather_scores",
    "top_terms",
    "runtime_table",
    "figure1",
    "figure2",
    "figure3",
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# Rules named like the workflow's, so that the profile's set-resources apply. Cluster
# rules record their SLURM job id; `summary` is a local rule and must have none.
SNAKEFILE = r"""
localrules: summary

rule all:
    input: "summary.txt"

rule prepare:
    output: "prepared.txt"
    shell: 'echo "job=${{SLURM_JOB_ID:-none}} threads={threads}" > {output}'

rule fit_autoencoder:
    output: "ae.txt"
    shell:
        'echo "job=${{SLURM_JOB_ID:-none}} threads={threads}'
        ' gpus=${{CUDA_VISIBLE_DEVICES:-none}}" > {output}'

rule fit_slalom:
    input: "prepared.txt"
    output: "slalom.txt"
    shell: 'echo "job=${{SLURM_JOB_ID:-none}} threads={threads}" > {output}'

rule summary:
    input: "ae.txt", "slalom.txt"
    output: "summary.txt"
    shell: 'cat {input} > {output}; echo "job=${{SLURM_JOB_ID:-none}}" >> {output}'

rule broken:
    output: "broken.txt"
    shell: "echo 'this job fails on purpose' >&2; exit 3"
"""


def _snakemake_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This Python's bin first on PATH; no inherited SLURM job or profile variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "SBATCH_", "SNAKEMAKE_", "IAE_SLURM_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def run_snakemake_on_slurm(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: int = SNAKEMAKE_TIMEOUT,
    profile: Path = PROFILE,
) -> subprocess.CompletedProcess[str]:
    """``snakemake --profile profiles/slurm`` in ``workdir``, under ``timeout``.

    Adds what a cluster without slurmdbd needs (``--slurm-status-command squeue``) and
    an early first status check, sized for small jobs. ``timeout(1)`` ends a hung run
    (exit 124); the cluster fixture then cancels its jobs.
    """
    cmd = [
        "timeout",
        "--kill-after=20",
        str(timeout),
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(profile),
        "--workflow-profile",
        "none",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        str(STATUS_CHECK_SECONDS),
        "--slurm-keep-successful-logs",
        *args,
    ]
    return subprocess.run(
        cmd, cwd=workdir, env=_snakemake_env(env), capture_output=True, text=True, check=False
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def _record(path: Path) -> dict[str, str]:
    """``key=value`` pairs a job wrote to its output file."""
    return dict(tok.split("=", 1) for tok in path.read_text().split() if "=" in tok)


def _profile() -> dict:
    """The profile as Snakemake reads it (yte templating) in this process's environment."""
    with (PROFILE / "config.v9+.yaml").open() as handle:
        return yte.process_yaml(handle, require_use_yte=True)


def _runtime(value: int | str, attempt: int = 1) -> int:
    """A profile's ``runtime`` (minutes, or an expression of ``attempt``) for one attempt,
    evaluated as Snakemake evaluates resource expressions."""
    return int(eval(str(value), {"__builtins__": {}}, {"attempt": attempt}))


def _minutes(time_limit: str) -> int:
    """SLURM's ``[D-]HH:MM:SS`` as minutes."""
    days, _, clock = time_limit.rpartition("-")
    hours, minutes, _ = (int(x) for x in clock.split(":"))
    return int(days or 0) * 24 * 60 + hours * 60 + minutes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running
    for name, proc in running.processes.items():
        assert proc.poll() is not None, f"{name} (pid {proc.pid}) still running after stop"


@pytest.fixture
def site_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No site settings (IAE_SLURM_*) from the caller's environment."""
    for name in [k for k in os.environ if k.startswith("IAE_SLURM_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    return tmp_path


def test_profile_is_for_snakemake_9_and_the_slurm_plugin(site_env: pytest.MonkeyPatch):
    profile = _profile()
    assert (PROFILE / "config.v9+.yaml").is_file()
    assert profile["executor"] == "slurm"
    rules = profile["set-resources"]
    assert rules["prepare"]["mem_mb"] > profile["default-resources"]["mem_mb"]
    assert _runtime(rules["fit_slalom"]["runtime"]) >= 24 * 60
    assert profile["set-threads"]["fit_slalom"] == 1
    # a job ended at its time limit is retried, each time with a longer limit
    assert profile["retries"] >= 1
    for rule in ("prepare", "fit_autoencoder", "fit_slalom", "score"):
        limits = [_runtime(rules[rule]["runtime"], attempt) for attempt in (1, 2, 3)]
        assert limits[0] < limits[1] < limits[2], (rule, limits)
    assert "gpu" not in rules["fit_autoencoder"]
    for rule in ("fit_autoencoder", "fit_slalom"):  # a random-mask fit is a fit like them
        assert rules[f"{rule}_null"] == rules[rule]
        assert profile["set-threads"][f"{rule}_null"] == profile["set-threads"][rule]
    assert "slurm_account" not in profile["default-resources"]

    site_env.setenv("IAE_SLURM_ACCOUNT", "lab")
    site_env.setenv("IAE_SLURM_PARTITION", "cpu")
    site_env.setenv("IAE_SLURM_GPU_PARTITION", "a100")
    site = _profile()
    assert site["default-resources"]["slurm_account"] == "lab"
    assert site["default-resources"]["slurm_partition"] == "cpu"
    gpu = site["set-resources"]["fit_autoencoder"]
    assert gpu["gpu"] == 1 and gpu["slurm_partition"] == "a100"
    assert site["set-resources"]["fit_autoencoder_null"] == gpu
    assert "gpu" not in site["set-resources"]["fit_slalom"]


def test_workflow_runs_through_the_profile(
    cluster: SlurmCluster, toy: Path, site_env: pytest.MonkeyPatch
):
    proc = run_snakemake_on_slurm(toy)
    assert proc.returncode == 0, _output(proc)

    jobs = {
        rule: _record(toy / f"{name}.txt")
        for rule, name in [
            ("prepare", "prepared"),
            ("fit_autoencoder", "ae"),
            ("fit_slalom", "slalom"),
        ]
    }
    job_ids = [job["job"] for job in jobs.values()]
    assert all(j.isdigit() for j in job_ids) and len(set(job_ids)) == 3, jobs
    summary = (toy / "summary.txt").read_text().splitlines()
    assert summary[-1] == "job=none", "the local rule ran inside a SLURM job"
    assert jobs["fit_autoencoder"]["gpus"] == "none"

    # What SLURM received is what the profile asks for, rule by rule.
    profile = _profile()
    defaults, per_rule = profile["default-resources"], profile["set-resources"]
    for rule, job in jobs.items():
        wanted = {**defaults, **per_rule.get(rule, {})}
        record = cluster.job_record(job["job"])
        assert record["JobState"] == "COMPLETED", record
        assert record["Partition"] == cluster.partition
        assert record["MinMemoryNode"] == f"{wanted['mem_mb']}M", (rule, record)
        assert _minutes(record["TimeLimit"]) == _runtime(wanted["runtime"]), (rule, record)
        threads = profile["set-threads"][rule]
        assert int(job["threads"]) == threads
        assert int(record["NumCPUs"]) == threads, (rule, record)
        assert "gpu" not in record.get("TresPerJob", ""), record


def test_gpu_request_reaches_slurm(cluster: SlurmCluster, toy: Path):
    proc = run_snakemake_on_slurm(
        toy,
        "ae.txt",
        env={"IAE_SLURM_GPU_PARTITION": cluster.gpu_partition},
    )
    assert proc.returncode == 0, _output(proc)
    ae = _record(toy / "ae.txt")
    record = cluster.job_record(ae["job"])
    assert record["Partition"] == cluster.gpu_partition
    assert "gpu:1" in record["TresPerJob"], record
    # SLURM handed the job its (placeholder) device.
    assert ae["gpus"] != "none"


def test_failing_job_is_reported_as_failed(cluster: SlurmCluster, toy: Path):
    proc = run_snakemake_on_slurm(toy, "broken.txt", "--retries", "0")
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 124, 137), _output(proc)
    assert "Error in rule broken" in out, _output(proc)
    failed = re.search(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'", out)
    assert failed is not None, _output(proc)
    job_id, state = failed.groups()
    assert state == "FAILED"
    record = cluster.job_record(job_id)
    assert record["JobState"] == "FAILED" and record["ExitCode"] != "0:0", record
    # The job's log is kept and shows why it failed.
    log = re.search(rf"SLURM jobid {job_id} \(log: (\S+)\)", out)
    assert log is not None, _output(proc)
    assert "this job fails on purpose" in Path(log.group(1)).read_text()
    assert not (toy / "broken.txt").exists()


def fan_out_config(path: Path) -> Path:
    """The tests' demo (config.yaml + tiny.yaml) on two datasets with 2 replicates each and
    one random-mask fit, autoencoder only: 4 fits, 2 random fits and 6 score jobs that can
    run side by side."""
    config = yaml.safe_load(TINY_CONFIG[0].read_text())
    for section, values in yaml.safe_load(TINY_CONFIG[1].read_text()).items():
        config[section] = _merged(config.get(section), values)
    config["replicates"] = 2
    config["analyses"]["random_masks"]["fits"] = 1
    config["models"] = {"ae": config["models"]["ae"]}
    config["figures"]["fig2"]["models"] = ["ae"]
    second = copy.deepcopy(config["datasets"]["demo"])
    second["simulation"]["seed"] = 1
    config["datasets"]["demo_b"] = second
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _merged(base, override):
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


def _submitted(out: str) -> dict[str, str]:
    """SLURM job id -> rule, from the executor's "submitted with SLURM jobid" lines."""
    return {
        job: rule for job, rule in re.findall(r"SLURM jobid (\d+) \(log: \S*?/rule_(\w+?)/", out)
    }


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def test_datasets_and_replicates_fan_out_as_parallel_slurm_jobs(cluster, tmp_path: Path):
    """Two datasets x two replicates: one SLURM job per fit and per replicate's scores, run
    side by side (SLURM's own start and end times overlap); downloads, summaries, tables
    and figures stay on the submitting node. The profile's 2 threads for the autoencoder
    are lowered to 1 here, so that two fits fit on the test node's 2 CPUs."""
    assert cluster.cpus >= 2, "the test node must offer 2 CPUs for jobs to run side by side"
    config = fan_out_config(tmp_path / "fan_out.yaml")
    (tmp_path / "work").mkdir()
    work = copy_workflow(tmp_path / "work")
    proc = run_snakemake_on_slurm(
        work, "--configfile", str(config), "--set-threads", "fit_autoencoder=1",
        timeout=WORKFLOW_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, _output(proc)
    out = proc.stdout + proc.stderr
    for rule in LOCAL_RULES:
        assert not re.search(rf"^\s*rule {rule}:", out, flags=re.MULTILINE), (
            f"rule {rule} ran as a SLURM job; list it under `localrules:` in the Snakefile"
        )
    jobs = _submitted(out)
    rules = sorted(jobs.values())
    assert rules.count("fit_autoencoder") == 4 and rules.count("score") == 6, rules
    assert rules.count("fit_autoencoder_null") == 2, rules  # random fits fan out like fits
    assert not set(rules) & set(LOCAL_RULES), rules
    spans = {}
    for job in jobs:
        record = cluster.job_record(job)
        assert record["JobState"] == "COMPLETED", record
        spans[job] = (_seconds(record["StartTime"]), _seconds(record["EndTime"]))
    overlapping = [
        (a, b)
        for a in spans
        for b in spans
        if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    ]
    fits = [(a, b) for a, b in overlapping if jobs[a] == jobs[b] == "fit_autoencoder"]
    assert fits, f"no two fits ran at once: {[(jobs[j], spans[j]) for j in spans]}"
    t0 = min(start for start, _ in spans.values())
    print("SLURM job, rule, start and end (s from the first start):")  # shown with -rP
    for job in sorted(spans, key=spans.get):
        print(f"  {job} {jobs[job]} {spans[job][0] - t0:.0f}-{spans[job][1] - t0:.0f}")
    print(f"{len(overlapping)} overlapping pair(s), {len(fits)} of two fits")
    for dataset in ("demo", "demo_b"):
        for rep in (0, 1):
            assert (work / f"results/{dataset}/ae/rep{rep}/factors.h5ad").is_file()
        summary = (work / f"results/{dataset}/ae/summary.tsv").read_text().splitlines()
        assert summary[1].split("\t")[2] == "HALLMARK_INTERFERON_GAMMA_RESPONSE", summary[:2]
    assert (work / "results/runtime.md").is_file()
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
        cwd=work,
        env=_snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, _output(dry)


# ---- a fit ended by SLURM at its time limit, resubmitted, resumed ------------------------

# The fit's length, in seconds of training on this machine: more than the 1-minute time
# limit of the first attempt (SLURM checks limits every 30 s, so it ends the job 60-90 s
# after its start, of which ~15 s go to starting Python and reading the data), and short
# enough for the retries' 2- and 3-minute limits.
FIT_SECONDS = 100
RESUMED = re.compile(r"resuming from \S+ \(epoch (\d+)\)")


def _seconds_per_epoch(config: dict, workdir: Path) -> float:
    """Time 8 epochs of the tiny demo's fit here (after one to warm up), to size the fit
    (without checkpoints: a save every 3 s adds little)."""
    import time

    import torch

    from iae_pipeline.contract import read_prepared
    from iae_pipeline.fit.autoencoder import fit_autoencoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepared = read_prepared(workdir / "results/demo/prepared.h5ad")
        options = dict(config["models"]["ae"]["options"], epochs=1)
        fit_autoencoder(prepared, options, seed=0, progress=False)
        start = time.perf_counter()
        fit_autoencoder(prepared, dict(options, epochs=8), seed=0, progress=False)
        return (time.perf_counter() - start) / 8
    finally:
        torch.set_num_threads(threads)


def time_limit_config(path: Path) -> dict:
    """The tests' demo, autoencoder only, one replicate and no random fit, a checkpoint
    every 3 seconds."""
    config = yaml.safe_load(fan_out_config(path).read_text())
    del config["datasets"]["demo_b"]
    config["replicates"] = 1
    config["analyses"]["random_masks"]["fits"] = 0
    config["checkpoint_minutes"] = 0.05
    return config


def profile_with_fit_limit(dest: Path, minutes: int) -> Path:
    """A copy of the profile whose fit_autoencoder runtime has base ``minutes`` (the
    profile's expression of ``attempt`` otherwise unchanged)."""
    text = (PROFILE / "config.v9+.yaml").read_text()
    fit = _profile()["set-resources"]["fit_autoencoder"]["runtime"]
    base, _, rest = str(fit).partition(" ")
    assert base.isdigit() and "attempt" in rest, f"fit_autoencoder runtime {fit!r}"
    line = f'runtime: "{fit}"'
    block = text.index("\n  fit_autoencoder:\n")  # its own block, not fit_autoencoder_null's
    at = text.index(line, block)
    assert not re.search(r"\n  \w+:", text[block + 1 : at]), "no runtime in its block"
    dest.mkdir()
    limited = text[:at] + f'runtime: "{minutes} {rest}"' + text[at + len(line) :]
    (dest / "config.v9+.yaml").write_text(limited)
    return dest


def test_a_fit_ended_at_its_time_limit_resumes_on_the_retry(cluster, tmp_path: Path):
    """The fit's first SLURM job gets a 1-minute limit, shorter than the fit: SLURM ends it
    (TIMEOUT), Snakemake submits it again with the profile's longer limit, and the fit
    resumes from its checkpoint at a later epoch. Its scores and factors equal, byte for
    byte, those of the same fit run without interruption (locally, at the same time)."""
    config = time_limit_config(tmp_path / "limit.yaml")
    config_path = tmp_path / "limit.yaml"
    reference, limited = (copy_workflow(_mkdir(tmp_path / name)) for name in ("ref", "slurm"))
    target = "results/demo/ae/rep0/scores.tsv"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    prepare = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/demo/prepared.h5ad", "--cores", "1",
         "--configfile", str(config_path)],
        cwd=reference, env=_snakemake_env(), capture_output=True, text=True,
        timeout=SNAKEMAKE_TIMEOUT, check=False,
    )  # fmt: skip
    assert prepare.returncode == 0, _output(prepare)
    epochs = max(100, round(FIT_SECONDS / _seconds_per_epoch(config, reference)))
    config["models"]["ae"]["options"]["epochs"] = epochs
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    local_log = tmp_path / "local.log"
    with local_log.open("w") as handle:  # the same fit, uninterrupted, beside the SLURM run
        local = subprocess.Popen(
            [sys.executable, "-m", "snakemake", target, "--cores", "1", "--configfile",
             str(config_path)],
            cwd=reference, env=_snakemake_env(), stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        profile = profile_with_fit_limit(tmp_path / "profile", minutes=1)
        proc = run_snakemake_on_slurm(
            limited, target, "--configfile", str(config_path), "--set-threads",
            "fit_autoencoder=1", timeout=WORKFLOW_TIMEOUT, profile=profile,
        )  # fmt: skip
        local.wait(timeout=WORKFLOW_TIMEOUT)
    assert local.returncode == 0, local_log.read_text()[-3000:]
    assert proc.returncode == 0, _output(proc)

    out = proc.stdout + proc.stderr
    fits = [job for job, rule in _submitted(out).items() if rule == "fit_autoencoder"]
    records = [cluster.job_record(job) for job in fits]
    states = [(r["JobState"], _minutes(r["TimeLimit"])) for r in records]
    print(f"{epochs} epochs; the fit's SLURM jobs (state, limit in minutes): {states}")
    assert len(fits) >= 2, f"the fit was not retried: {states}\n{_output(proc)}"
    assert states[0] == ("TIMEOUT", 1), states
    assert states[-1][0] == "COMPLETED", states
    limits = [limit for _, limit in states]
    assert limits == sorted(set(limits)), f"the limit did not grow: {states}"
    log = (limited / "logs/demo/fit_autoencoder_ae_rep0.log").read_text()
    resumed = RESUMED.search(log)
    assert resumed is not None, log
    assert 0 < int(resumed.group(1)) < epochs, resumed.group(0)
    assert not (limited / "results/demo/ae/rep0/checkpoint").exists()
    for path in (target, "results/demo/ae/rep0/factors.h5ad"):
        assert (limited / path).read_bytes() == (reference / path).read_bytes(), path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path

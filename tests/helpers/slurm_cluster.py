"""A throw-away one-node SLURM cluster on loopback, for tests.

Starts Debian's ``munged``, ``slurmctld`` and ``slurmd`` as root in the foreground (no
systemd), with every state, log, pid and socket file under one run directory, and
stops exactly the processes it started. Only ``/etc/slurm/slurm.conf`` lives outside
that directory, because the SLURM clients and ``slurmstepd`` read it from there; it is
marked as ours and removed again on stop.

Use :func:`unavailable_reason` to decide whether to skip, then::

    with slurm_cluster(run_dir) as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env)
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = SLURM_CONF.with_name("gres.conf")
MARKER = "# written by tests/slurm_cluster.py (interpretable-ae); removed when the test stops"
LOCK_FILE = Path("/tmp/interpretable-ae-slurm-cluster.lock")
BINARIES = (
    "munged",
    "mungekey",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "scontrol",
    "scancel",
    "sinfo",
)
PARTITION = "test"
GPU_PARTITION = "gpu"
_PR_SET_PDEATHSIG = 1


class ClusterStartError(RuntimeError):
    """The cluster did not come up; the message names the daemon and its log file."""


@dataclass
class SlurmCluster:
    """A running cluster: its node, default partition and the daemons' processes."""

    run_dir: Path
    node: str
    partition: str
    gpu_partition: str
    cpus: int
    memory_mb: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for SLURM clients: no inherited job variables."""
        return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}

    def log(self, daemon: str) -> str:
        """Tail of one daemon's log file (for failure messages)."""
        path = self.run_dir / f"{daemon}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def job_record(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (finished jobs stay for MinJobAge)."""
        out = _run(["scontrol", "--oneliner", "show", "job", job_id], env=self.env)
        return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or ``None`` when it can."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (
            f"SLURM/munge binaries not found ({', '.join(missing)}); "
            "run .ci/install-slurm.sh (apt-get install slurm-wlm munge) as root"
        )
    if os.geteuid() != 0:
        return "a test SLURM cluster needs root (daemons run as root, config in /etc/slurm)"
    for conf in (SLURM_CONF, GRES_CONF):
        if conf.exists() and MARKER not in conf.read_text(errors="replace"):
            return f"{conf} exists and was not written by this test; refusing to replace it"
    node = socket.gethostname().split(".")[0]
    try:
        socket.gethostbyname(node)
    except OSError:
        return (
            f"host name {node!r} (hostname -s) does not resolve; SLURM's NodeName needs it: "
            f"add '127.0.0.1 {node}' to /etc/hosts (.ci/install-slurm.sh does)"
        )
    return None


@contextmanager
def slurm_cluster(run_dir: Path, *, start_timeout: float = 60.0) -> Iterator[SlurmCluster]:
    """Run a one-node cluster for the duration of the ``with`` block.

    ``run_dir`` must be short (it holds the munge socket; Unix socket paths are
    limited to 107 bytes). Daemons are stopped by PID, in reverse start order, even
    when the block raises; a daemon left behind by a killed test process receives
    SIGTERM through the parent-death signal.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise ClusterStartError(reason)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _exclusive_lock(timeout=start_timeout):
        cluster = SlurmCluster(
            run_dir=run_dir,
            node=socket.gethostname().split(".")[0],
            partition=PARTITION,
            gpu_partition=GPU_PARTITION,
            cpus=os.cpu_count() or 1,
            memory_mb=_node_memory_mb(),
        )
        try:
            _start_munge(cluster)
            _write_slurm_conf(cluster)
            _start(cluster, "slurmctld", ["slurmctld", "-D", "-i"])
            _start(cluster, "slurmd", ["slurmd", "-D", "-N", cluster.node])
            _wait_for_idle_node(cluster, start_timeout)
            yield cluster
        finally:
            _cancel_jobs(cluster)
            _stop_all(cluster)
            for conf in (SLURM_CONF, GRES_CONF):
                if conf.exists() and MARKER in conf.read_text(errors="replace"):
                    conf.unlink()


@contextmanager
def _exclusive_lock(timeout: float) -> Iterator[None]:
    """One test cluster per machine at a time (there is one /etc/slurm/slurm.conf)."""
    with LOCK_FILE.open("w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterStartError(
                        f"another test cluster holds {LOCK_FILE}; wait for it to finish"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 30) -> str:
    """Run a short client command and return stdout; errors carry stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise ClusterStartError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(cluster: SlurmCluster, name: str, cmd: list[str]) -> None:
    """Start one daemon in the foreground, logging to ``<run_dir>/<name>.log``."""
    with (cluster.run_dir / f"{name}.stdout").open("w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            cwd=cluster.run_dir,
        )
    cluster.processes[name] = proc
    (cluster.run_dir / f"{name}.started.pid").write_text(f"{proc.pid}\n")
    time.sleep(0.5)
    if proc.poll() is not None:
        raise ClusterStartError(
            f"{name} exited at once ({proc.returncode}); see {cluster.run_dir / name}.log:\n"
            f"{cluster.log(name)}{(cluster.run_dir / f'{name}.stdout').read_text()}"
        )


def _start_munge(cluster: SlurmCluster) -> None:
    """A private munged with its own key and socket inside ``run_dir``."""
    key = cluster.run_dir / "munge.key"
    if not key.exists():
        _run(["mungekey", "--create", f"--keyfile={key}"])
    key.chmod(0o600)
    _start(
        cluster,
        "munged",
        [
            "munged",
            "--foreground",
            # The socket lives in a private (0700) directory; munged wants it world-
            # traversable, which only matters for other users' clients.
            "--force",
            f"--socket={_munge_socket(cluster)}",
            f"--key-file={key}",
            f"--pid-file={cluster.run_dir / 'munged.pid'}",
            f"--log-file={cluster.run_dir / 'munged.log'}",
            f"--seed-file={cluster.run_dir / 'munged.seed'}",
        ],
    )
    _wait(lambda: _munge_socket(cluster).exists(), 10, "munged socket", cluster, "munged")


def _munge_socket(cluster: SlurmCluster) -> Path:
    return cluster.run_dir / "munge.sock"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node_memory_mb() -> int:
    """RealMemory as slurmd itself measures it (``slurmd -C``)."""
    out = _run(["slurmd", "-C"])
    for tok in out.split():
        if tok.startswith("RealMemory="):
            return int(tok.split("=", 1)[1])
    raise ClusterStartError(f"'slurmd -C' reported no RealMemory: {out!r}")


def _write_slurm_conf(cluster: SlurmCluster) -> None:
    """Loopback-only, accounting-free, cgroup-free configuration."""
    d = cluster.run_dir
    (d / "ctld-state").mkdir(exist_ok=True)
    (d / "slurmd-spool").mkdir(exist_ok=True)
    lines = [
        MARKER,
        "ClusterName=iaetest",
        f"SlurmctldHost={cluster.node}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={_munge_socket(cluster)}",
        f"StateSaveLocation={d / 'ctld-state'}",
        f"SlurmdSpoolDir={d / 'slurmd-spool'}",
        f"SlurmctldPidFile={d / 'slurmctld.pid'}",
        f"SlurmdPidFile={d / 'slurmd.pid'}",
        f"SlurmctldLogFile={d / 'slurmctld.log'}",
        f"SlurmdLogFile={d / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        # No cgroups in this sandbox: track processes through /proc, no task binding.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        # No slurmdbd: no accounting, so Snakemake must poll with squeue. Finished
        # jobs stay visible to squeue/scontrol for MinJobAge seconds.
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MinJobAge=600",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "KillWait=5",
        "InactiveLimit=0",
        # One placeholder GPU (gres.conf binds no device file), so that GPU requests
        # (sbatch --gpus=1) can be scheduled; CUDA finds no device in such a job.
        "GresTypes=gpu",
        f"NodeName={cluster.node} NodeAddr=127.0.0.1 CPUs={cluster.cpus} "
        f"RealMemory={cluster.memory_mb} Gres=gpu:1 State=UNKNOWN",
        f"PartitionName={cluster.partition} Nodes={cluster.node} Default=YES "
        "MaxTime=INFINITE State=UP",
        f"PartitionName={cluster.gpu_partition} Nodes={cluster.node} MaxTime=INFINITE State=UP",
    ]
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text("\n".join(lines) + "\n")
    GRES_CONF.write_text(f"{MARKER}\nNodeName={cluster.node} Name=gpu File=/dev/null Count=1\n")


def _wait(ready, timeout: float, what: str, cluster: SlurmCluster, daemon: str) -> None:
    """Poll ``ready()`` until true; on timeout raise with the daemon's log."""
    deadline = time.monotonic() + timeout
    while not ready():
        for name, proc in cluster.processes.items():
            if proc.poll() is not None:
                raise ClusterStartError(
                    f"{name} died ({proc.returncode}) while waiting for {what}:\n"
                    f"{cluster.log(name)}"
                )
        if time.monotonic() > deadline:
            raise ClusterStartError(
                f"timed out after {timeout:.0f}s waiting for {what}:\n{cluster.log(daemon)}"
            )
        time.sleep(0.5)


def _wait_for_idle_node(cluster: SlurmCluster, timeout: float) -> None:
    """Wait for the node to register; fail at once if SLURM drains it."""

    def idle() -> bool:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%T|%E", "--nodes", cluster.node],
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=10,
        )
        state, _, reason = proc.stdout.strip().partition("|")
        if proc.returncode == 0 and ("drain" in state or "inval" in state):
            raise ClusterStartError(
                f"SLURM set node {cluster.node} to {state!r}: {reason} "
                f"(see {cluster.run_dir / 'slurmctld.log'})"
            )
        return proc.returncode == 0 and state == "idle"

    _wait(idle, timeout, f"node {cluster.node} to become idle", cluster, "slurmd")


def _cancel_jobs(cluster: SlurmCluster) -> None:
    """Cancel whatever is still queued or running on this (private) cluster."""
    ctld = cluster.processes.get("slurmctld")
    if ctld is None or ctld.poll() is not None:
        return
    proc = subprocess.run(
        ["squeue", "--noheader", "--format=%i"],
        capture_output=True,
        text=True,
        env=cluster.env,
        timeout=10,
    )
    job_ids = proc.stdout.split()
    if job_ids:
        subprocess.run(["scancel", *job_ids], env=cluster.env, timeout=10, check=False)
        time.sleep(2)


def _stop_all(cluster: SlurmCluster, grace: float = 15.0) -> None:
    """SIGTERM each started daemon by PID (reverse order), SIGKILL after ``grace``."""
    for name, proc in reversed(list(cluster.processes.items())):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
        (cluster.run_dir / f"{name}.started.pid").unlink(missing_ok=True)

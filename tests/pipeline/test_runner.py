"""The scripts' common wrapper: one ERROR line, no outputs left, a full disk said plainly, and
the failed jobs' lines collected for the workflow's onerror handler."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import ROOT
from iae_pipeline.files import staged
from iae_pipeline.runner import (
    failed_job_errors,
    is_disk_full,
    last_error,
    one_line,
    run_script,
)


@pytest.fixture()
def restore_logging():
    """run_script configures the root logger; undo it after each test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    logging.captureWarnings(False)
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    root.handlers[:], root.level = saved


def _smk(tmp_path: Path, rule: str = "fit") -> SimpleNamespace:
    return SimpleNamespace(
        rule=rule, output=[str(tmp_path / "out" / "a.h5ad")], log=[str(tmp_path / "job.log")]
    )


def _errors(log_file: str) -> list[str]:
    return [ln for ln in Path(log_file).read_text().splitlines() if " ERROR " in ln]


def test_an_expected_error_is_one_line_and_removes_the_outputs(tmp_path, restore_logging, capsys):
    smk = _smk(tmp_path)

    def main(smk):
        Path(smk.output[0]).parent.mkdir(parents=True)
        Path(smk.output[0]).write_text("half written")
        raise ValueError("data/x.h5ad: something is wrong\n  on a second line; fix it")

    with pytest.raises(SystemExit) as exit_:
        run_script(main, smk)
    assert exit_.value.code == 1 and not Path(smk.output[0]).exists()
    (error,) = _errors(smk.log[0])
    assert error.endswith("fit: data/x.h5ad: something is wrong; on a second line; fix it")
    assert capsys.readouterr().err.strip().splitlines() == [error]


def test_a_bug_keeps_its_traceback(tmp_path, restore_logging, capsys):
    smk = _smk(tmp_path)

    def main(smk):
        raise KeyError("model")

    with pytest.raises(SystemExit) as exit_:
        run_script(main, smk)
    assert exit_.value.code == 1
    assert "fit failed unexpectedly: KeyError: 'model'" in _errors(smk.log[0])[0]
    assert "Traceback (most recent call last)" in Path(smk.log[0]).read_text()
    assert "Traceback" in capsys.readouterr().err


def test_sigterm_unwinds_and_leaves_no_temporary_file(tmp_path, restore_logging):
    smk = _smk(tmp_path)

    def main(smk):
        with staged(smk.output[0], suffix=".part.h5ad") as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("not reached: SIGTERM raises")

    with pytest.raises(SystemExit) as exit_:
        run_script(main, smk)
    assert exit_.value.code == 128 + signal.SIGTERM
    assert list((tmp_path / "out").iterdir()) == []
    assert "stopped by SIGTERM" in _errors(smk.log[0])[0]
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back


def test_finalizer_errors_go_to_the_log_only(tmp_path, restore_logging, capsys):
    smk = _smk(tmp_path)

    class Leaky:
        def __del__(self):
            raise OSError("cannot close the file")

    def main(smk):
        Leaky()  # deleted at once: its error is "unraisable"
        # what a C extension's deallocator prints through sys.excepthook (h5py does)
        sys.excepthook(RuntimeError, RuntimeError("cannot decrement id ref count"), None)

    hooks = sys.unraisablehook, sys.excepthook
    run_script(main, smk)
    log = Path(smk.log[0]).read_text()
    assert "cannot close the file" in log and "cannot decrement id ref count" in log
    assert capsys.readouterr().err == ""
    assert (sys.unraisablehook, sys.excepthook) == hooks


def test_disk_full_is_recognised_in_hdf5_messages():
    h5 = RuntimeError("Can't decrement id ref count (file write failed: errno = 28, error ...)")
    assert is_disk_full(h5) and is_disk_full(OSError(28, "No space left on device"))
    chained = RuntimeError("close failed")
    chained.__context__ = OSError(122, "Disk quota exceeded")
    assert is_disk_full(chained)
    assert not is_disk_full(ValueError("errno = 2 file not found"))
    assert one_line(ValueError("a\n\n  b ")) == "a; b"


def test_a_full_disk_is_one_line_without_h5py_noise(tmp_path):
    """A real write past a file-size limit (the same errors as a full disk, without root):
    one line on stderr, exit 1, no output and no temporary file."""
    script = tmp_path / "job.py"
    out = tmp_path / "results" / "big.h5ad"
    script.write_text(
        textwrap.dedent(
            f"""
            import resource, signal, sys
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
            from types import SimpleNamespace
            import anndata as ad, numpy as np
            from iae_pipeline.files import staged
            from iae_pipeline.runner import run_script

            def main(smk):
                adata = ad.AnnData(np.ones((600, 200), dtype=np.float32))
                adata.uns["run"] = {{f"k{{i}}": i for i in range(200)}}  # many small objects
                with staged(smk.output[0], suffix=".part.h5ad") as tmp:
                    adata.write_h5ad(tmp)

            smk = SimpleNamespace(rule="fit", output=[{str(out)!r}], log=[{str(tmp_path / "j.log")!r}])
            run_script(main, smk)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow" / "lib"))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert f"{out}: no space left on the device" in lines[0] and "df -h" in lines[0]
    assert list(out.parent.iterdir()) == []


SNAKEMAKE_LOG = """\
Building DAG of jobs...
Error in rule prepare:
    message: None
    jobid: 3
    output: results/kang/prepared.h5ad
    log: {prepare} (check log file(s) for error details)
Error in rule fit_slalom:
    jobid: 5
    log: {slalom}, {missing} (check log file(s) for error details)
Error in rule figure1:
    jobid: 7
Shutting down, this might take some time.
"""


def test_failed_job_errors_repeat_each_jobs_line(tmp_path):
    prepare, slalom = tmp_path / "prepare.log", tmp_path / "slalom.log"
    prepare.write_text(
        "2026-01-01 10:00:00,000 INFO x: reading\n"
        "2026-01-01 10:00:01,000 ERROR prepare: data/k.h5ad obs['stim']: 20 of 700 cells have "
        "no condition label\n"
    )
    slalom.write_text(
        "2026-01-01 10:00:00,000 ERROR fit_slalom: fit_slalom failed unexpectedly: KeyError: 'x'\n"
        "Traceback (most recent call last):\n  File ...\nKeyError: 'x'\n"
    )
    main_log = tmp_path / "snakemake.log"
    main_log.write_text(
        SNAKEMAKE_LOG.format(prepare=prepare, slalom=slalom, missing=tmp_path / "none.log")
    )
    assert failed_job_errors([main_log, tmp_path / "absent.log"]) == [
        "error in prepare: data/k.h5ad obs['stim']: 20 of 700 cells have no condition label",
        "error in fit_slalom: fit_slalom failed unexpectedly: KeyError: 'x'",
        "error in figure1: no one-line message; see Snakemake's output above",
    ]
    assert last_error(tmp_path / "none.log") is None


def test_a_finished_job_logs_its_exact_peak_memory(tmp_path, restore_logging):
    """The kernel's peak of the job's process (getrusage), which Snakemake's benchmark files
    can miss between two samples: a job that held 200 MB logs at least that."""
    import re

    import numpy as np

    def main(smk):
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        assert block.sum() > 0

    run_script(main, _smk(tmp_path))
    logged = re.search(r"fit: peak memory (\d+) MB", Path(tmp_path / "job.log").read_text())
    assert logged is not None and int(logged.group(1)) >= 200

"""Snakemake script: download one source (a data file or a gene-set source) to output[0].

params.spec: the source dict from the config ({url, sha256}, or a gene-set source with
source: url | pypi_wheel | local). Verified before it is kept; see iae_pipeline.prepare.download.
config['allow_insecure_urls']: the plain-http/ftp URLs the user accepts; config['sha256_lock']:
the lock file of the sources without a sha256 (trust on first download; set by the workflow
beside its config file). Both are read from the config, not params, so that editing them
never re-runs a finished download.
"""

from iae_pipeline.prepare.checksums import ChecksumLock
from iae_pipeline.prepare.download import fetch_source
from iae_pipeline.runner import run_script


def main(smk) -> None:
    config = getattr(smk, "config", None) or {}
    allowed = list(config.get("allow_insecure_urls") or [])
    lock = ChecksumLock(config["sha256_lock"]) if config.get("sha256_lock") else None
    fetch_source(dict(smk.params.spec), smk.output[0], allowed_insecure=allowed, lock=lock)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821

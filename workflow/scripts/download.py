"""Snakemake script: download one source (a data file or a gene-set source) to output[0].

params.spec: the source dict from the config ({url, sha256}, or a gene-set source with
source: url | pypi_wheel | local). Verified before it is kept; see iae_pipeline.prepare.download.
config['allow_insecure_urls']: the plain-http/ftp URLs the user accepts (read from the config,
not a param, so that editing the list never re-runs a finished download).
"""

from iae_pipeline.prepare.download import fetch_source
from iae_pipeline.runner import run_script


def main(smk) -> None:
    config = getattr(smk, "config", None) or {}
    allowed = list(config.get("allow_insecure_urls") or [])
    fetch_source(dict(smk.params.spec), smk.output[0], allowed_insecure=allowed)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821

"""Snakemake script: download one source (a data file or a gene-set source) to output[0].

params.spec: the source dict from the config ({url, sha256}, or a gene-set source with
source: url | pypi_wheel | local). Verified before it is kept; see interpretable_ae.download.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from interpretable_ae.download import fetch_source  # noqa: E402
from interpretable_ae.runner import run_script  # noqa: E402


def main(smk) -> None:
    fetch_source(dict(smk.params.spec), smk.output[0])


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821

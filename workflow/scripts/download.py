"""Snakemake script: download one source (a data file or a gene-set source) to output[0].

params.spec: the source dict from the config ({url, sha256}, or a gene-set source with
source: url | pypi_wheel | local). Verified before it is kept; see interpretable_ae.download.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "lib"))  # noqa: F821

from interpretable_ae.download import fetch_source  # noqa: E402


def main(spec: dict, output: str, log_file: str) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(log_file, mode="w"), logging.StreamHandler(sys.stderr)],
        force=True,
    )
    try:
        fetch_source(dict(spec), output)
    except (ValueError, OSError) as err:
        logging.getLogger("download").error("%s", err)
        Path(output).unlink(missing_ok=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake.params.spec, snakemake.output[0], snakemake.log[0]))  # noqa: F821

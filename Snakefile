# The interpretable-autoencoder workflow (see README.md); everything lives in workflow/.
# workflow/Snakefile is imported as a module, not included: Snakemake takes the default
# target (its `rule all`) only from the main Snakefile or from a module.
import sys

# The demo config is the default; a --configfile replaces it (it is not merged into it).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


module iae:
    snakefile:
        "workflow/Snakefile"
    config:
        config


use rule * from iae


# When a job fails, repeat each failed job's one-line error (from its log) at the end of
# Snakemake's output, where it is seen. Snakemake runs `onerror` of the main Snakefile only.
onerror:
    from iae_pipeline.runner import failed_job_errors  # on sys.path: rules/common.smk

    for line in failed_job_errors([log] if isinstance(log, str) else log):
        print(line, file=sys.stderr)

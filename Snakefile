# The interpretable-autoencoder workflow (see README.md); everything lives in workflow/.
# workflow/Snakefile is imported as a module, not included: Snakemake takes the default
# target (its `rule all`) only from the main Snakefile or from a module.

# The demo config is the default; a --configfile replaces it (it is not merged into it).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


module iae:
    snakefile:
        "workflow/Snakefile"
    config:
        config


use rule * from iae

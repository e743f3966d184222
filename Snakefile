# The interpretable-autoencoder workflow (see README.md). Rules, schema and scripts live in
# workflow/; this file only adds the default target.
include: "workflow/Snakefile"


rule all:
    input:
        all_targets(),
    default_target: True

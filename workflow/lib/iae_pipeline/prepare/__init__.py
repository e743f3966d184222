"""From the config's sources to ``prepared.h5ad``: downloads, readers, orthologs, the
demo's planted condition, preprocessing, and every check that can run before a fit."""

"""The workflow's helpers around the model: everything the Snakemake rules run.

Config validation (:mod:`.config`), verified downloads (:mod:`.download`), dataset readers
(:mod:`.datasets`), orthologs (:mod:`.orthologs`), preprocessing (:mod:`.preprocess`), the
demo's planted condition (:mod:`.simulation`), the data and factor contracts
(:mod:`.contract`), f-scLVM (:mod:`.slalom_compat`, :mod:`.slalom_adapter`), scoring
(:mod:`.scoring`), tables (:mod:`.tables`), figures (:mod:`.plots`), and the common wrapper
of the rules' scripts (:mod:`.runner`, :mod:`.files`). The model itself is the separate
package :mod:`interpretable_ae`, which imports nothing from here.
"""

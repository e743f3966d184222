"""The workflow's helpers around the model: everything the Snakemake rules run.

One subpackage per stage of the workflow, named after its rule file
(``workflow/rules/<stage>.smk``), over a few modules of the workflow's own plumbing:

==================  ======================================================================
:mod:`.prepare`     downloads with checksums (:mod:`~.prepare.download`), dataset readers
                    (:mod:`~.prepare.datasets`), human-to-mouse gene sets
                    (:mod:`~.prepare.orthologs`), the demo's planted condition
                    (:mod:`~.prepare.simulation`), preprocessing into prepared data
                    (:mod:`~.prepare.preprocess`) and the checks before any fit
                    (:mod:`~.prepare.checks`)
:mod:`.fit`         each model's adapter to the factor file: the autoencoder
                    (:mod:`~.fit.autoencoder`) and f-scLVM (:mod:`~.fit.slalom`, with its
                    runtime shims :mod:`~.fit.slalom_compat`)
:mod:`.score`       logistic-regression scores and their summaries over replicates
                    (:mod:`~.score.scoring`), each factor's share of the condition's change
                    (:mod:`~.score.response`), Table 1 and the top terms
                    (:mod:`~.score.tables`)
:mod:`.figures`     the paper's figures and those of the analyses, over one style
:mod:`.analyses`    beyond the paper: term claims calibrated against random masks
                    (:mod:`~.analyses.random_masks`, :mod:`~.analyses.term_groups`,
                    :mod:`~.analyses.null`, :mod:`~.analyses.calibration`) and the paper's
                    claims judged (:mod:`~.analyses.verdicts`); gene-set refinement
                    (:mod:`~.analyses.refinement`), donor-level tests
                    (:mod:`~.analyses.donor_tests`), classical baselines
                    (:mod:`~.analyses.baselines`)
==================  ======================================================================

The plumbing, at the root: the prepared data and the factor file, written, read and
checked in one place (:mod:`.contract`); the sample design (:mod:`.samples`); the config's
checks and settings (:mod:`.config`), its replicates, random fits and seeds
(:mod:`.replicates`); the
scripts' wrapper (:mod:`.runner`), outputs written via temporary paths (:mod:`.files`),
the code each output was made with (:mod:`.provenance`).

Imports only point down: the stages import the root modules and the model, never each
other upwards. The model itself is the separate package :mod:`interpretable_ae`, which
imports nothing from here.
"""

# Config validation, the dataset/model tables and the input and target functions.
import os
import sys
from pathlib import Path

from snakemake.sourcecache import LocalSourceFile

RULES_DIR = workflow.current_basedir  # workflow/rules, a local folder or a remote module's


def workflow_file(relpath):
    """A local path to a file of this workflow, relative to workflow/rules: where it is in a
    local checkout, or fetched into Snakemake's source cache when the workflow is a module
    loaded from GitHub (snakedeploy's github(...))."""
    source = RULES_DIR.join(relpath)
    if isinstance(source, LocalSourceFile):
        return Path(source.get_path_or_uri(secret_free=False))
    return Path(workflow.sourcecache.get_path(source))


def library_dir():
    """workflow/lib of a local checkout; for a remote module, the installed packages."""
    if isinstance(RULES_DIR, LocalSourceFile):
        return workflow_file("../lib")
    try:
        import iae_pipeline
    except ImportError:
        sys.exit(
            "the workflow's library is not installed: a module loaded from GitHub needs its "
            "packages; pip install the repository at the module's tag (config/README.md, "
            "'Using the workflow as a module'), or point the module at a local clone"
        )
    return Path(iae_pipeline.__file__).resolve().parents[1]


LIB = library_dir()
# The rules' scripts import the two packages of workflow/lib (the model and the pipeline)
# through PYTHONPATH, set once here for every job: local, in a conda env or on SLURM.
# Library modules are no inputs of the rules, so editing one never reruns a fit by itself;
# every job records the code that made its outputs under results/provenance/ instead
# (iae_pipeline.provenance; `python -m iae_pipeline.provenance` lists older outputs).
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(LIB), *filter(None, [os.environ.get("PYTHONPATH")])]),
    IAE_PROVENANCE_DIR=os.path.abspath("results/provenance"),
)
sys.path.insert(0, str(LIB))

from iae_pipeline.config import (  # noqa: E402
    ConfigError,
    check_config,
    dataset_figures,
    dataset_settings,
    download_file_name,
    lock_path_for,
    model_settings,
)
from iae_pipeline.provenance import code_digest, file_sha256  # noqa: E402
from iae_pipeline.replicates import (  # noqa: E402
    calibrated_models,
    model_replicates,
    random_fit_ids,
    replicate_seed,
    side_by_side_models,
)
from snakemake.exceptions import WorkflowError  # noqa: E402

try:
    check_config(config, workflow_file("../schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(str(err))
# Trust on first download: the sha256 of every source the config does not pin is recorded in
# this lock file (beside the first config file) and checked on every later download.
config.setdefault(
    "sha256_lock",
    str(lock_path_for((workflow.config_settings.configfiles or ["config/config.yaml"])[0])),
)


DATASETS = list(config.get("run", list(config["datasets"])))
MODELS = config["models"]
AE_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "autoencoder"]
SLALOM_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "slalom"]
try:
    REPLICATES = {m: model_replicates(config, m) for m in MODELS}
    side_by_side_models(config, [])  # an unknown model name stops the run here
    CALIBRATED = calibrated_models(config)  # analyses.random_masks
except ConfigError as err:
    sys.exit(str(err))
RANDOM_MASKS = config["analyses"]["random_masks"]
DOWNLOADED_GENESETS = [
    g
    for g, spec in config["genesets"].items()
    # remote sources, and local ones in plain format: the download rule writes their GMT
    if spec["source"] in ("url", "pypi_wheel") or spec.get("format", "gmt") != "gmt"
]


def _alternatives(names):
    """A wildcard regex matching exactly these names (never matches when empty)."""
    return "|".join(names) if names else "(?!)"


# ---- downloads -------------------------------------------------------------------------


def dataset_file_path(dataset, role):
    url = config["datasets"][dataset]["files"][role]["url"]
    return f"resources/datasets/{dataset}/{download_file_name(url)}"


def dataset_file_spec(wildcards):
    files = config["datasets"][wildcards.dataset].get("files", {})
    for role, spec in files.items():
        if os.path.basename(dataset_file_path(wildcards.dataset, role)) == wildcards.file:
            return spec
    raise ValueError(f"no file '{wildcards.file}' under datasets.{wildcards.dataset}.files")


def geneset_path(name):
    if name not in DOWNLOADED_GENESETS:
        return config["genesets"][name]["path"]
    return f"resources/genesets/{name}.gmt"


def geneset_local_input(wildcards):
    """A local gene-set file converted by the download rule is that rule's input."""
    spec = config["genesets"][wildcards.geneset]
    return [spec["path"]] if spec["source"] == "local" else []


def orthologs_path():
    spec = config["orthologs"]
    return spec["path"] if spec["source"] == "local" else "resources/orthologs/human_mouse.csv"


# ---- prepare ---------------------------------------------------------------------------


def annotation_inputs(dataset):
    """The gene sets (GMT paths, in the config's order) and, for mouse data, orthologs."""
    ds = config["datasets"][dataset]
    inputs = {"genesets": [geneset_path(g) for g in ds["genesets"]]}
    if ds["species"] == "mouse" and "orthologs" in config:
        inputs["orthologs"] = orthologs_path()
    return inputs


def dataset_inputs(wildcards):
    """The dataset's own files (downloads or a local .h5ad) and its annotation inputs."""
    ds = config["datasets"][wildcards.dataset]
    inputs = {role: dataset_file_path(wildcards.dataset, role) for role in ds.get("files", {})}
    if ds["source"] == "h5ad":
        inputs["h5ad"] = ds["path"]
    return inputs | annotation_inputs(wildcards.dataset)


def prepare_inputs(wildcards):
    """A dataset with a planted condition is read from that step's output."""
    if "simulation" in config["datasets"][wildcards.dataset]:
        simulated = {"simulated": f"results/{wildcards.dataset}/simulated.h5ad"}
        return simulated | annotation_inputs(wildcards.dataset)
    return dataset_inputs(wildcards)


def geneset_specs(wildcards):
    ds = config["datasets"][wildcards.dataset]
    return [dict(config["genesets"][g], name=g) for g in ds["genesets"]]


# ---- fit, score, figures ----------------------------------------------------------------


def model_label(model):
    return MODELS[model].get("label", model)


def model_options(dataset, model):
    """``models.<model>.options`` with ``datasets.<dataset>.model_options.<model>`` on top."""
    return model_settings(config, dataset, model)


def replicates(model):
    """The replicates fitted for ``model``: 0 .. replicates-1, or [0] when its fits do not
    depend on the seed (iae_pipeline.replicates)."""
    return REPLICATES[model]


def fit_seed(wildcards):
    """Replicate r is fitted with seed ``seed + r``."""
    return replicate_seed(config["seed"], int(wildcards.rep))


def fit_index(fit):
    """The number of a fit directory: 3 for rep3 or null3."""
    return int(fit.removeprefix("rep").removeprefix("null"))


def null_fit_seed(wildcards):
    """Random fit k: the mask's rows permuted, and the model fitted, with seed ``seed + k``."""
    return replicate_seed(config["seed"], int(wildcards.k))


def label_permutations(model, fit):
    """Label permutations scored for a fit: those of analyses.random_masks for the replicates
    of a calibrated model (the label null of its units), none otherwise."""
    calibrated = model in CALIBRATED and fit.startswith("rep")
    return int(RANDOM_MASKS["label_permutations"]) if calibrated else 0


def random_fits(model):
    """The random-mask fits of ``model`` (none when it is not calibrated)."""
    return random_fit_ids(config, model)


def factors_path(dataset, model, rep=0):
    return f"results/{dataset}/{model}/rep{rep}/factors.h5ad"


def replicate_factors(dataset, model):
    return [factors_path(dataset, model, r) for r in replicates(model)]


def fit_tables(dataset, model, kind, name):
    """The score tables (``name``: scores or scores_permuted) of a model's replicates
    (``kind`` rep) or random fits (null)."""
    ids = replicates(model) if kind == "rep" else random_fits(model)
    return [f"results/{dataset}/{model}/{kind}{i}/{name}.tsv" for i in ids]


def replicate_scores(dataset, model):
    return [f"results/{dataset}/{model}/rep{r}/scores.tsv" for r in replicates(model)]


def fit_benchmark(dataset, model, rep):
    kind = MODELS[model]["kind"]
    return f"results/benchmarks/{dataset}/fit_{kind}_{model}_rep{rep}.tsv"


def finished_models(dataset):
    """Models of ``dataset`` whose per-model summary exists now, when the DAG is built."""
    return [m for m in MODELS if os.path.exists(f"results/{dataset}/{m}/summary.tsv")]


def side_by_side(dataset):
    """The models gathered by the side-by-side outputs of ``dataset`` (Figure 2, the
    dataset's score tables, Table 1): see side_by_side_models in config/README.md."""
    return side_by_side_models(config, finished_models(dataset))


def side_by_side_inputs(dataset):
    """The per-model outputs a side-by-side output gathers; an error naming the key when
    there are none (side_by_side_models: finished, before any model has finished)."""
    models = side_by_side(dataset)
    if not models:
        raise WorkflowError(
            f"side_by_side_models: finished: no model of dataset '{dataset}' has finished "
            f"(no results/{dataset}/<model>/summary.tsv yet); run the per-model targets first"
        )
    return models


def figure_settings(dataset, fig):
    return dataset_figures(config, dataset).get(fig, {})


def has_figure3(dataset):
    spec = figure_settings(dataset, "fig3")
    return bool(spec.get("terms")) and bool(spec.get("cell_types"))


def figure2_models(dataset):
    """Figure 2's models (fig2.models, default all) that are side by side, in that order."""
    wanted = figure_settings(dataset, "fig2").get("models", list(MODELS))
    drawn = set(side_by_side(dataset))
    return [m for m in wanted if m in drawn]


def figure2_left_out(dataset):
    wanted = figure_settings(dataset, "fig2").get("models", list(MODELS))
    return [m for m in wanted if m not in set(figure2_models(dataset))]


def runtime_entries():
    """Table 1's rows: every replicate of every side-by-side model of every dataset."""
    return [
        {"dataset": d, "model": m, "label": model_label(m), "replicate": r}
        for d in DATASETS
        for m in side_by_side(d)
        for r in replicates(m)
    ]


def runtime_inputs(kind):
    """Table 1's inputs: the fits' benchmark files, or their factor files (for
    ``uns['run']['converged']``), aligned with :func:`runtime_entries`."""
    entries = runtime_entries()
    if not entries:
        raise WorkflowError(
            "side_by_side_models: finished: no model of any dataset has finished yet, so "
            "Table 1 has no rows; run the per-model targets first"
        )
    if kind == "benchmarks":
        return [fit_benchmark(e["dataset"], e["model"], e["replicate"]) for e in entries]
    return [factors_path(e["dataset"], e["model"], e["replicate"]) for e in entries]


def per_model_targets(dataset, model):
    """What one model's results are made of; none of them waits for another model."""
    targets = [
        f"results/{dataset}/{model}/scores.tsv",
        f"results/{dataset}/{model}/summary.tsv",
        f"results/{dataset}/{model}/top_terms.tsv",
    ]
    if figure_settings(dataset, "fig1").get("model") == model:
        targets += [
            f"results/{dataset}/{model}/figures/fig1_condition.png",
            f"results/{dataset}/{model}/figures/fig1_cell_type.png",
        ]
    if has_figure3(dataset) and figure_settings(dataset, "fig3").get("model") == model:
        targets.append(f"results/{dataset}/{model}/figures/fig3_groups.png")
    targets.append(f"results/{dataset}/figures/refinement_{model}.png")  # rules/analyses.smk
    if model in CALIBRATED:
        targets.append(f"results/{dataset}/figures/calibration_{model}.png")
    return targets


# ---- analyses beyond the paper (rules/analyses.smk) ----------------------------------------


def analysis_models(dataset):
    """The models whose results the per-dataset analyses put side by side."""
    return side_by_side(dataset)


def donor_design(dataset):
    """The dataset's sample design and the test's settings (sample_key empty: none)."""
    ds = config["datasets"][dataset]
    test = config["analyses"]["donor_test"]
    return {
        "sample_key": ds.get("sample_key", ""),
        "paired": ds.get("paired"),
        "control": ds.get("control"),
        "test": test["test"],
        "min_cells": test["min_cells"],
    }


def verdict_roles(dataset):
    """The side-by-side models that play the paper's parts: the first autoencoder, the
    first f-scLVM without dense factors, the first with dense factors (None: absent)."""
    roles = {"autoencoder": None, "fsclvm": None, "dense": None}
    for m in side_by_side(dataset):
        kind = MODELS[m]["kind"]
        n_dense = int(model_options(dataset, m).get("n_dense", 0) or 0)
        role = "autoencoder" if kind == "autoencoder" else ("dense" if n_dense else "fsclvm")
        if kind in ("autoencoder", "slalom") and roles[role] is None:
            roles[role] = m
    return roles


def verdict_entries(dataset):
    """Every replicate fit of the models with a part (:func:`verdict_roles`)."""
    models = [m for m in verdict_roles(dataset).values() if m is not None]
    return [
        {
            "model": m,
            "replicate": r,
            "benchmark": fit_benchmark(dataset, m, r),
            "factors": factors_path(dataset, m, r),
        }
        for m in models
        for r in replicates(m)
    ]


def calibration_outputs(dataset, name):
    """The calibration table ``name`` of the autoencoder with a part, if it is calibrated."""
    ae = verdict_roles(dataset)["autoencoder"]
    return [f"results/{dataset}/{ae}/calibration/{name}.tsv"] if ae in CALIBRATED else []


def analyses_targets(dataset):
    """The side-by-side analyses' outputs of one dataset (for rule all); refinement and the
    calibration are per model (:func:`per_model_targets`)."""
    return [
        f"results/{dataset}/figures/donor_test.png",
        f"results/{dataset}/figures/baselines.png",
        f"results/{dataset}/verdicts.tsv",
    ]


def library_digest():
    """One digest of the library as it is now (iae_pipeline.provenance)."""
    sources = {p.relative_to(LIB).as_posix(): file_sha256(p) for p in sorted(LIB.rglob("*.py"))}
    return code_digest(sources)


def all_targets():
    """Every result, then the table of the code that made them (rules/provenance.smk)."""
    return results_targets() + ["results/code_versions.tsv"]


def results_targets():
    targets = []
    gathered = False
    for ds in DATASETS:
        for model in MODELS:
            targets += per_model_targets(ds, model)
        if side_by_side(ds):
            gathered = True
            targets += [
                f"results/{ds}/scores.tsv",
                f"results/{ds}/summary.tsv",
                f"results/{ds}/figures/fig2_accuracy.png",
                *analyses_targets(ds),  # rules/analyses.smk
            ]
        else:
            print(
                f"side_by_side_models: finished: no model of dataset '{ds}' has finished yet; "
                "the default target leaves out its side-by-side outputs",
                file=sys.stderr,
            )
    if gathered:
        targets += ["results/runtime.tsv", "results/runtime.md"]
    return targets

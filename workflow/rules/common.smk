# Config validation, the dataset/model tables and the input and target functions.
import os
import sys
from pathlib import Path

WORKFLOW_DIR = Path(workflow.current_basedir).parent
LIB = WORKFLOW_DIR / "lib"
SCRIPTS = WORKFLOW_DIR / "scripts"
# The rules' scripts import the two packages of workflow/lib (the model and the pipeline)
# through PYTHONPATH, set once here for every job: local, in a conda env or on SLURM.
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(LIB), *filter(None, [os.environ.get("PYTHONPATH")])])
)
sys.path.insert(0, str(LIB))

from iae_pipeline.config import (  # noqa: E402
    ConfigError,
    check_config,
    dataset_figures,
    dataset_settings,
    download_file_name,
    model_settings,
)
from iae_pipeline.sources import script_sources  # noqa: E402

try:
    check_config(config, WORKFLOW_DIR / "schemas/config.schema.yaml")
except ConfigError as err:
    sys.exit(str(err))


DATASETS = list(config.get("run", list(config["datasets"])))
MODELS = config["models"]
AE_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "autoencoder"]
SLALOM_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "slalom"]
DOWNLOADED_GENESETS = [
    g
    for g, spec in config["genesets"].items()
    # remote sources, and local ones in plain format: the download rule writes their GMT
    if spec["source"] in ("url", "pypi_wheel") or spec.get("format", "gmt") != "gmt"
]


def _alternatives(names):
    """A wildcard regex matching exactly these names (never matches when empty)."""
    return "|".join(names) if names else "(?!)"


def code(script):
    """The library files ``script`` imports (derived from its imports), as inputs: editing
    one re-runs the jobs that use it."""
    return list(script_sources(SCRIPTS / f"{script}.py", LIB))


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


def factors_path(dataset, model):
    return f"results/{dataset}/{model}/factors.h5ad"


def fit_benchmark(dataset, model):
    kind = MODELS[model]["kind"]
    return f"results/benchmarks/{dataset}/fit_{kind}_{model}.tsv"


def figure_settings(dataset, fig):
    return dataset_figures(config, dataset).get(fig, {})


def has_figure3(dataset):
    spec = figure_settings(dataset, "fig3")
    return bool(spec.get("terms")) and bool(spec.get("cell_types"))


def figure2_models(dataset):
    return figure_settings(dataset, "fig2").get("models", list(MODELS))


# ---- analyses beyond the paper (rules/beyond.smk) ----------------------------------------


def replicate_factors(dataset, model):
    """Every fitted replicate of a model (its factors.h5ad files)."""
    return [factors_path(dataset, model)]


def analysis_models(dataset):
    """The models whose results the per-dataset analyses put side by side."""
    return list(MODELS)


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


def beyond_targets(dataset):
    """The analyses' outputs of one dataset (for rule all)."""
    targets = [f"results/{dataset}/figures/refinement_{m}.png" for m in MODELS]
    targets += [
        f"results/{dataset}/figures/donor_test.png",
        f"results/{dataset}/figures/baselines.png",
    ]
    return targets


def all_targets():
    targets = ["results/runtime.tsv", "results/runtime.md"]
    for ds in DATASETS:
        targets += [
            f"results/{ds}/scores.tsv",
            f"results/{ds}/top_terms.tsv",
            f"results/{ds}/figures/fig1_condition.png",
            f"results/{ds}/figures/fig1_cell_type.png",
            f"results/{ds}/figures/fig2_accuracy.png",
        ]
        if has_figure3(ds):
            targets.append(f"results/{ds}/figures/fig3_groups.png")
        targets += beyond_targets(ds)  # rules/beyond.smk
    return targets

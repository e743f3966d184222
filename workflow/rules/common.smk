# Config validation, the dataset/model tables and the input and target functions.
import os
import sys
from pathlib import Path

LIB = Path(workflow.current_basedir).parent / "lib"
PKG = LIB / "interpretable_ae"
sys.path.insert(0, str(LIB))

from interpretable_ae.workflow_config import (  # noqa: E402
    ConfigError,
    check_config,
    dataset_figures,
    dataset_settings,
)

try:
    check_config(config, Path(workflow.current_basedir).parent / "schemas/config.schema.yaml")
except ConfigError as err:
    sys.exit(str(err))


DATASETS = list(config.get("run", list(config["datasets"])))
MODELS = config["models"]
AE_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "autoencoder"]
SLALOM_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "slalom"]
DOWNLOADED_GENESETS = [
    g for g, spec in config["genesets"].items() if spec["source"] in ("url", "pypi_wheel")
]


def _alternatives(names):
    """A wildcard regex matching exactly these names (never matches when empty)."""
    return "|".join(names) if names else "(?!)"


def lib_sources(*modules):
    """Package modules as inputs, so that editing one re-runs the jobs that use it."""
    return [str(PKG / f"{m}.py") for m in ("__init__", "contract", "files", "runner") + modules]


# ---- downloads -------------------------------------------------------------------------


def dataset_file_path(dataset, role):
    url = config["datasets"][dataset]["files"][role]["url"]
    return f"resources/datasets/{dataset}/{os.path.basename(url.rstrip('/'))}"


def dataset_file_spec(wildcards):
    files = config["datasets"][wildcards.dataset].get("files", {})
    for role, spec in files.items():
        if os.path.basename(dataset_file_path(wildcards.dataset, role)) == wildcards.file:
            return spec
    raise ValueError(f"no file '{wildcards.file}' under datasets.{wildcards.dataset}.files")


def geneset_path(name):
    spec = config["genesets"][name]
    if spec["source"] == "local":
        return spec["path"]
    return f"resources/genesets/{name}.gmt"


def orthologs_path():
    spec = config["orthologs"]
    return spec["path"] if spec["source"] == "local" else "resources/orthologs/human_mouse.csv"


# ---- prepare ---------------------------------------------------------------------------


def prepare_inputs(wildcards):
    ds = config["datasets"][wildcards.dataset]
    inputs = {role: dataset_file_path(wildcards.dataset, role) for role in ds.get("files", {})}
    if ds["source"] == "h5ad":
        inputs["h5ad"] = ds["path"]
    inputs["genesets"] = [geneset_path(g) for g in ds["genesets"]]
    if ds["species"] == "mouse" and "orthologs" in config:
        inputs["orthologs"] = orthologs_path()
    inputs["code"] = lib_sources(
        "genesets", "datasets", "orthologs", "preprocess", "simulate"
    )
    return inputs


def geneset_specs(wildcards):
    ds = config["datasets"][wildcards.dataset]
    return [dict(config["genesets"][g], name=g) for g in ds["genesets"]]


# ---- fit, score, figures ----------------------------------------------------------------


def model_label(model):
    return MODELS[model].get("label", model)


def model_options(model):
    return dict(MODELS[model].get("options", {}))


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
    return targets

"""The top-n terms by decoder L2 norm, per model, for one dataset.

Snakemake script: input.factors, params.models (aligned), params.n, optional params.dataset
and params.labels ({model: label}); output.tsv, output.md, optional output.html; log[0].
"""

import logging

import pandas as pd

from iae_pipeline.runner import run_script
from iae_pipeline.scoring import read_runs, run_label
from iae_pipeline.tables import to_markdown, top_terms, write_table, write_text


def main(smk) -> None:
    runs = read_runs(smk.params.models, smk.input.factors)
    dataset = str(smk.params.get("dataset", ""))
    labels = dict(smk.params.get("labels", {}) or {})
    n = int(smk.params.n)
    frames, sections = [], []
    for model, adata in runs.items():
        table = top_terms(adata, n=n)
        label = run_label(adata, model, labels)
        if len(table) < n:
            logging.warning("%s: only %d annotated factor(s), fewer than %d", model, len(table), n)
        logging.info("%s: top term %s", model, table["term"].iloc[0] if len(table) else "-")
        sections.append(f"### {label} (`{model}`)\n\n" + to_markdown(table.drop(columns="term")))
        frames.append(table.assign(dataset=dataset, model=model, label=label))
    out = pd.concat(frames, ignore_index=True)
    out = out[
        [
            "dataset",
            "model",
            "label",
            *[c for c in out.columns if c not in ("dataset", "model", "label")],
        ]
    ]
    title = f"Top {n} terms by decoder L2 norm" + (f", {dataset}" if dataset else "")
    write_table(out, tsv=smk.output.tsv, html_path=smk.output.get("html"), title=title)
    write_text(smk.output.md, f"## {title}\n\n" + "\n".join(sections))


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821

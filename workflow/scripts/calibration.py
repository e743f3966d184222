"""Calibrate one model's term and group scores against its random-mask fits, with the
label-permuted control.

Snakemake script: input.prepared, input.real / input.null (score tables of the replicates
and of the random fits), input.real_permuted / input.null_permuted (the same fits scored
with the condition labels permuted), input.label_null (the replicates' response shares under
more label permutations: the label null of the true and of the permuted analysis alike); params.scores (score columns, the first leads),
params.groups (rule, threshold, linkage), params.window, params.min_null, params.alpha,
params.top_n, params.dataset, params.label; output.groups, output.terms,
output.split, output.control (TSV), output.html (groups first, then the split, then the
control), output.png, output.pdf (the lead score's figure); log[0].
"""

import logging

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from iae_pipeline.analyses.calibration import (
    GroupRule,
    calibrate,
    control_summary,
    split_sentence,
)
from iae_pipeline.analyses.null import NullSettings
from iae_pipeline.contract import read_prepared
from iae_pipeline.figures.calibration import plot_calibration, score_label
from iae_pipeline.figures.style import finish_figure
from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import read_scores
from iae_pipeline.score.tables import to_html, write_text
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY


def _tables(paths, column: str) -> pd.DataFrame:
    return pd.concat(
        [read_scores(p).assign(**{column: i}) for i, p in enumerate(paths)], ignore_index=True
    )


def main(smk) -> None:
    prepared = read_prepared(smk.input.prepared)
    mask, terms = prepared.varm[MASK_KEY], [str(t) for t in prepared.uns[TERMS_KEY]]
    rule = GroupRule(**dict(smk.params.groups))
    settings = NullSettings(
        window=float(smk.params.window), min_null=int(smk.params.min_null),
        alpha=float(smk.params.alpha),
    )  # fmt: skip
    inputs = {
        "true": (_tables(smk.input.real, "replicate"), _tables(smk.input.null, "fit")),
        "permuted": (
            _tables(smk.input.real_permuted, "replicate"),
            _tables(smk.input.null_permuted, "fit"),
        ),
    }
    label_null = [pd.read_csv(p, sep="\t") for p in smk.input.label_null]
    out = {"groups": [], "terms": [], "split": [], "values": [], "control": []}
    for score in smk.params.scores:
        real, null = inputs["true"]
        result = calibrate(real, null, mask, terms, score=score, label_null=label_null,
                           rule=rule, settings=settings)  # fmt: skip
        control = calibrate(*inputs["permuted"], mask, terms, score=score,
                            label_null=label_null, rule=rule, settings=settings)  # fmt: skip
        for key in ("groups", "terms", "split", "values"):
            out[key].append(getattr(result, key).assign(score=score))
        out["control"].append(control_summary(control, settings.alpha))
        top = result.groups.iloc[0]
        logging.info(
            "%s, %s: first group %s (%d terms) %.3f ± %.3f, null p %.2g, FDR %.2g; %d of %d "
            "groups and %d of %d terms at FDR < %g; label control: %s",
            smk.params.label, score, top["group_name"], top["members"], top["score_mean"],
            top["score_sd"], top["pvalue"], top["padj"], int(result.groups["significant"].sum()),
            len(result.groups), int(result.terms["significant"].sum()), len(result.terms),
            settings.alpha, control_summary(control, settings.alpha).to_dict("records"),
        )  # fmt: skip
        if top["members"] > 1:
            logging.info("split of the first group: %s", split_sentence(result.split, top["group"]))
    tables = {key: pd.concat(frames, ignore_index=True) for key, frames in out.items()}
    for key in ("groups", "terms", "split", "control"):
        write_text(getattr(smk.output, key), tables[key].to_csv(sep="\t", index=False))
    write_text(smk.output.html, _report(smk, tables))
    lead = smk.params.scores[0]
    fig, notes = plot_calibration(
        *(tables[k][tables[k]["score"] == lead] for k in ("groups", "terms", "values")),
        top_n=int(smk.params.top_n), alpha=settings.alpha,
        title=f"{smk.params.dataset} · {smk.params.label}: {score_label(lead)} against "
        f"{len(smk.input.null)} random masks",
    )  # fmt: skip
    finish_figure(fig, notes, "calibration", smk.output.png, smk.output.pdf)


def _report(smk, tables) -> str:
    """One HTML page: groups first, then the split within groups, then the control."""
    lead = smk.params.scores[0]
    groups = tables["groups"][tables["groups"]["score"] == lead].drop(columns=["score"])
    split = tables["split"][tables["split"]["score"] == lead].drop(columns=["score"])
    title = (
        f"{smk.params.dataset} · {smk.params.label}: term groups by {score_label(lead)}, "
        f"against {len(smk.input.null)} random masks"
    )
    pages = [
        to_html(groups, title),
        to_html(split, "The split within each group: how often each member leads"),
        to_html(tables["control"], "Label-permuted control (expected: nothing significant)"),
    ]
    body = "".join(p.split("<body>", 1)[1].rsplit("</body>", 1)[0] for p in pages)
    return pages[0].split("<body>", 1)[0] + "<body>" + body + "</body></html>\n"


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821

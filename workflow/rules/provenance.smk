# The code each result was made with: every job records the library modules it imported
# (results/provenance/, iae_pipeline.provenance); this table gathers the records for the
# report. Its params hold the library's current digest, so it reruns, alone and in
# seconds, whenever the library changes: the report then says which results older code
# made (list them: python -m iae_pipeline.provenance; rerun them: snakemake --forcerun).


localrules:
    code_versions,


rule code_versions:
    input:
        lambda wc: results_targets(),
    output:
        tsv="results/code_versions.tsv",
        html=report(
            "results/code_versions.html",
            caption="../report/code_versions.rst",
            category="Provenance",
        ),
    params:
        records="results/provenance",
        library=library_digest(),
    log:
        "logs/code_versions.log",
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/code_versions.py"

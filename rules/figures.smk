# Paper figures and tables: named targets (`snakemake fig6`).


rule fig6:
    output:
        png=report(
            f"{OUT}/figures/fig6_pathstar.png",
            caption="report/fig6.rst",
            category="Figure 6: Path-Star",
        ),
        pdf=f"{OUT}/figures/fig6_pathstar.pdf",
        csv=report(
            f"{OUT}/tables/fig6_pathstar.csv",
            caption="report/fig6_table.rst",
            category="Figure 6: Path-Star",
        ),
        md=f"{OUT}/tables/fig6_pathstar.md",
    input:
        evals=lambda w: [f"{OUT}/pathstar/runs/{r.run_id}/eval.json" for r in runs_of("pathstar")],
        code=lib("plots/pathstar.py", "tables.py"),
    log:
        f"{OUT}/logs/fig6.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/fig6.py"

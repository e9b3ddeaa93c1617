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
        evals=lambda w: evals_of("pathstar"),
        code=lib("plots/pathstar.py", "plots/style.py", "tables.py"),
    log:
        f"{OUT}/logs/fig6.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/fig6.py"


rule fig4:
    output:
        csv=report(
            f"{OUT}/tables/fig4_countdown.csv",
            caption="report/fig4.rst",
            category="Figures 4-5: Countdown",
        ),
        md=f"{OUT}/tables/fig4_countdown.md",
    input:
        evals=lambda w: evals_of("countdown"),
        code=lib("tables.py"),
    log:
        f"{OUT}/logs/fig4.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/fig4.py"


rule fig5:
    output:
        png=report(
            f"{OUT}/figures/fig5_countdown_validity.png",
            caption="report/fig5.rst",
            category="Figures 4-5: Countdown",
        ),
        pdf=f"{OUT}/figures/fig5_countdown_validity.pdf",
    input:
        evals=lambda w: evals_of("countdown"),
        code=lib("plots/countdown.py", "plots/style.py"),
    log:
        f"{OUT}/logs/fig5.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/fig5.py"

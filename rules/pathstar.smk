# Path-Star (Figure 6): data, training and evaluation come from the generic rules; this file
# adds the report target. Code: nextlat/benchmarks/pathstar/.


use rule benchmark_report as fig6 with:
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
        code=code(slice_module("pathstar", "report")),
    params:
        benchmark="pathstar",
        stage="report:fig6",
    log:
        f"{OUT}/logs/fig6.log",


ALL_TARGETS.extend(rules.fig6.output)

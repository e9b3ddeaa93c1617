# A5 state tracking (Figure 10): data (one folder per training length, a shared test set),
# training and evaluation come from the generic rules; this file adds the report targets.
# Code: nextlat/benchmarks/a5/.


use rule benchmark_report as fig10 with:
    output:
        png=report(
            f"{OUT}/figures/fig10_a5.png",
            caption="report/fig10.rst",
            category="Figure 10: A5 state tracking",
        ),
        pdf=f"{OUT}/figures/fig10_a5.pdf",
    input:
        evals=lambda w: evals_of("a5"),
        code=code(slice_module("a5", "report")),
    params:
        benchmark="a5",
        stage="report:fig10",
    log:
        f"{OUT}/logs/fig10.log",


use rule benchmark_report as table_a5 with:
    output:
        csv=report(
            f"{OUT}/tables/table_a5.csv",
            caption="report/table_a5.rst",
            category="Figure 10: A5 state tracking",
        ),
        md=f"{OUT}/tables/table_a5.md",
    input:
        evals=lambda w: evals_of("a5"),
        code=code(slice_module("a5", "report")),
    params:
        benchmark="a5",
        stage="report:table_a5",
    log:
        f"{OUT}/logs/table_a5.log",


ALL_TARGETS.extend(rules.fig10.output)
ALL_TARGETS.extend(rules.table_a5.output)

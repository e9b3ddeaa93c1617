# Countdown (Figures 4 and 5): data, training and evaluation come from the generic rules;
# this file adds the report targets. Code: nextlat/benchmarks/countdown/.


use rule benchmark_report as fig4 with:
    output:
        csv=report(
            f"{OUT}/tables/fig4_countdown.csv",
            caption="report/fig4.rst",
            category="Figures 4-5: Countdown",
        ),
        md=f"{OUT}/tables/fig4_countdown.md",
    input:
        evals=lambda w: evals_of("countdown"),
        code=code(slice_module("countdown", "report")),
    params:
        benchmark="countdown",
        stage="report:fig4",
    log:
        f"{OUT}/logs/fig4.log",


use rule benchmark_report as fig5 with:
    output:
        png=report(
            f"{OUT}/figures/fig5_countdown_validity.png",
            caption="report/fig5.rst",
            category="Figures 4-5: Countdown",
        ),
        pdf=f"{OUT}/figures/fig5_countdown_validity.pdf",
    input:
        evals=lambda w: evals_of("countdown"),
        code=code(slice_module("countdown", "report")),
    params:
        benchmark="countdown",
        stage="report:fig5",
    log:
        f"{OUT}/logs/fig5.log",


ALL_TARGETS.extend(rules.fig4.output + rules.fig5.output)

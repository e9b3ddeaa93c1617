# Studies (`snakemake study`): a benchmark with a `sweep` runs its whole run matrix once per
# point of the grid; `benchmark_study` sets the points side by side (headline metrics per point,
# the claims' verdicts per point, a figure) in results/<scale>/<benchmark>/study.*. The
# benchmark's own report targets would pool the points as seeds, so `all` builds the study
# instead of them at such a scale (see Snakefile).
SWEPT = list(VARIANTS)


rule benchmark_study:
    output:
        csv=report(f"{OUT}/{{benchmark}}/study.csv", caption="report/study.rst", category="2. Studies"),
        md=f"{OUT}/{{benchmark}}/study.md",
        png=report(f"{OUT}/{{benchmark}}/study.png", caption="report/study.rst", category="2. Studies"),
        pdf=f"{OUT}/{{benchmark}}/study.pdf",
    input:
        unpack(claims_inputs),
        claims=f"{OUT}/{{benchmark}}/claims.csv",
        code=lambda w: claims_code(w) + code("nextlat.stages.study"),
    params:
        variants=lambda w: VARIANTS[w.benchmark],
    wildcard_constraints:
        benchmark="|".join(SWEPT) or "none",
    log:
        f"{OUT}/logs/study/{{benchmark}}.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/study.py"


rule study:
    input:
        expand(f"{OUT}/{{benchmark}}/study.csv", benchmark=SWEPT),
    localrule: True

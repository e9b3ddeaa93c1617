# The paper's claims as a checked table (`snakemake claims`): each enabled benchmark's claims
# (its slice's paper.CLAIMS) are evaluated on its results by `benchmark_claims`; `claims` gathers
# them, with the claims of benchmarks this scale does not run listed as not run, into
# results/<scale>/tables/claims.{csv,md}: the first category of the HTML report.
import importlib.util

# Benchmarks with a sweep (a study scale): run id -> the run's point, read by claims and study.
VARIANTS = {name: {r.run_id: r.variant for r in RUNS.values() if r.benchmark == name}
            for name in ENABLED if bench_cfg(name).get("sweep")}


def claims_inputs(wildcards):
    name = wildcards.benchmark
    return {"evals": evals_of(name), "probes": probes_of(name) if name in PROBED else [],
            "speculative": speculative_of(name) if name in SPECULATIVE else []}


def claims_code(wildcards):
    spec = SPECS[wildcards.benchmark]
    paper = slice_module(wildcards.benchmark, "paper")
    modules = [paper] if importlib.util.find_spec(paper) else []  # a slice may declare no claims yet
    if spec.claim_frame:
        modules.append(slice_module(wildcards.benchmark, spec.claim_frame.partition(":")[0]))
    return code("nextlat.stages.claims", *modules)


rule benchmark_claims:
    output:
        table=f"{OUT}/{{benchmark}}/claims.csv",
    input:
        unpack(claims_inputs),
        code=claims_code,
    params:
        scale=CFG["scale"],
        variants=lambda w: VARIANTS.get(w.benchmark, {}),  # a swept benchmark's claims: once per point
    wildcard_constraints:
        benchmark="|".join(ENABLED),
    log:
        f"{OUT}/logs/claims/{{benchmark}}.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/claims.py"


rule claims:
    output:
        csv=report(f"{OUT}/tables/claims.csv", caption="report/claims.rst", category="1. Claims: what reproduced"),
        md=f"{OUT}/tables/claims.md",
    input:
        tables=expand(f"{OUT}/{{benchmark}}/claims.csv", benchmark=ENABLED),
        # every slice's paper.py: a disabled benchmark's claims are listed too (as not run)
        code=code("nextlat.stages.claims", *[registry.get(n).module_name("paper") for n in registry.names()
                                             if importlib.util.find_spec(registry.get(n).module_name("paper"))]),
    params:
        enabled=ENABLED,
        scale=CFG["scale"],
    log:
        f"{OUT}/logs/claims.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/claims.py"


ALL_TARGETS.extend(rules.claims.output)

# Manhattan world models (Table 1, Figure 3): street graph + traversals (the generic
# `manhattan_data` rule, with the graph and trip pairs the spec declares) -> training ->
# world-model metrics and generated traversals (`manhattan_eval`) -> graph reconstruction
# -> table1 and fig3. This file adds the true world model (an oracle evaluated like a run),
# the reconstructions and the two report targets. Code: nextlat/benchmarks/manhattan/.
from nextlat.benchmarks.manhattan.data import has_coords as manhattan_has_coords

MH = bench_cfg("manhattan")
MH_DIR = f"{OUT}/manhattan"
MANHATTAN_MAPS = manhattan_has_coords(MH["graph"])
NO_MAPS_REASON = (
    "the Manhattan street graph has no node coordinates (graph.source: pickle without "
    "graph.pickle.coords), and map reconstruction and maps need them; point "
    "graph.pickle.coords to a node,lat,lon CSV or use the osm or synthetic source"
)


def mh_first_seed_runs():
    """One run per method variant (the first seed): the maps of Figure 3."""
    first = MH["seeds"][0]
    return [r for r in RUNS.values() if r.benchmark == "manhattan" and r.seed == first]


def mh_recon(kind, name):
    return f"{MH_DIR}/{kind}/{name}/reconstruction.json"


def fig3_maps():
    """{label: reconstruction.json}: the true world model first, then one run per method."""
    maps = {f"true_{t}": mh_recon("oracle", t) for t in MH["tasks"]}
    maps.update({r.run_id: mh_recon("runs", r.run_id) for r in mh_first_seed_runs()})
    return maps


def fig3_outputs():
    maps, views = fig3_maps(), MH["maps"]["views"]
    out = {"csv": f"{OUT}/tables/fig3_reconstruction.csv", "md": f"{OUT}/tables/fig3_reconstruction.md"}
    exts = ["html", "png"] if MH["maps"]["png"] else ["html"]
    for label in maps:
        for view in views:
            for ext in exts:
                out[f"{label}_{view}_{ext}"] = f"{OUT}/figures/fig3_manhattan/{label}_{view}.{ext}"
    if MH["maps"]["png"]:
        out["panel"] = report(f"{OUT}/figures/fig3_manhattan.png", caption="report/fig3.rst",
                              category="Figure 3: Manhattan maps")
    return out


# The "true world model" row: the evaluation stage run on an oracle that reads the true graph.
use rule benchmark_stage as manhattan_oracle with:
    output:
        eval=f"{MH_DIR}/oracle/{{task}}/eval.json",
        samples=f"{MH_DIR}/oracle/{{task}}/samples.parquet",
    input:
        unpack(lambda w: data_files("manhattan", w.task)),
        code=code(slice_module("manhattan", "oracle")),
    params:
        benchmark="manhattan",
        stage="oracle:evaluate_oracle",
        eval=lambda w: MH["eval"],
        seed=lambda w: MH["seeds"][0],
    log:
        f"{OUT}/logs/eval/manhattan/oracle_{{task}}.log",


def recon_inputs(wildcards):
    task = RUNS[wildcards.name].task if wildcards.kind == "runs" else wildcards.name
    data = data_files("manhattan", task)
    return {"samples": f"{MH_DIR}/{wildcards.kind}/{wildcards.name}/samples.parquet",
            "graph": data["graph"], "meta": data["meta"]}


use rule benchmark_stage as manhattan_reconstruct with:
    output:
        recon=mh_recon("{kind}", "{name}"),
    input:
        unpack(recon_inputs),
        code=code(slice_module("manhattan", "reconstruction")),
    params:
        benchmark="manhattan",
        stage="reconstruction:reconstruct_samples",
        cfg=lambda w: MH["eval"]["reconstruction"],
        seed=lambda w: MH["seeds"][0],
    wildcard_constraints:
        kind="runs|oracle",
        name=r"[A-Za-z0-9_.\-]+",
    log:
        f"{OUT}/logs/reconstruct/{{kind}}_{{name}}.log",


use rule benchmark_report as table1 with:
    output:
        csv=report(
            f"{OUT}/tables/table1_manhattan.csv",
            caption="report/table1.rst",
            category="Table 1: Manhattan",
        ),
        md=f"{OUT}/tables/table1_manhattan.md",
    input:
        evals=lambda w: evals_of("manhattan"),
        oracle=lambda w: [f"{MH_DIR}/oracle/{t}/eval.json" for t in MH["tasks"]],
        code=code(slice_module("manhattan", "report")),
    params:
        benchmark="manhattan",
        stage="report:table1",
    log:
        f"{OUT}/logs/table1.log",


def fig3_inputs(wildcards):
    if not MANHATTAN_MAPS:
        raise WorkflowError(f"fig3 cannot be built: {NO_MAPS_REASON}")
    vendor = sorted(str(p) for p in (Path(workflow.basedir) / "nextlat/benchmarks/manhattan/vendor").glob("*"))
    return {"graph": data_files("manhattan", MH["tasks"][0])["graph"],
            "code": code(slice_module("manhattan", "maps")) + vendor}


use rule benchmark_report as fig3 with:
    output:
        **fig3_outputs(),
    input:
        unpack(fig3_inputs),
        recons=lambda w: list(fig3_maps().values()),
    params:
        benchmark="manhattan",
        stage="maps:fig3",
        maps=lambda w: fig3_maps(),
        opts=lambda w: MH["maps"],
    log:
        f"{OUT}/logs/fig3.log",


ALL_TARGETS.extend(rules.table1.output)
if MANHATTAN_MAPS:
    ALL_TARGETS.extend(rules.fig3.output)
else:
    logger.warning(f"fig3 skipped: {NO_MAPS_REASON}")

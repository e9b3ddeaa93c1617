# Manhattan world models (Table 1, Figure 3): street graph + traversals -> training (the
# shared `train` rule) -> world-model metrics -> graph reconstruction -> table1 and fig3.
# Manhattan has its own data and eval rules because they write more than the generic ones:
# the graph and trip pairs with the data, and the generated traversals with each evaluation
# (the reconstruction and maps are built from them).

MH = bench_cfg("manhattan") if enabled("manhattan") else None
MANHATTAN_MAPS = bool(MH) and manhattan_has_coords(MH["graph"])
NO_MAPS_REASON = (
    "the Manhattan street graph has no node coordinates (graph.source: pickle without "
    "graph.pickle.coords), and map reconstruction and maps need them; point "
    "graph.pickle.coords to a node,lat,lon CSV or use the osm or synthetic source"
)
MH_DIR = f"{OUT}/manhattan"

if MH and not MANHATTAN_MAPS and MH["data"]["pickups"] == "density" and not MH["data"]["trips_file"]:
    # caught here rather than in the data job: the demand surface is defined by coordinates
    raise WorkflowError(
        "benchmarks.manhattan.data.pickups: density needs node coordinates, which this street "
        "graph lacks (pickle source without graph.pickle.coords); use pickups: uniform or a trips_file"
    )


def mh_source_files(wildcards):
    """Local files the street graph and trips come from, so that replacing them reruns."""
    g, data = MH["graph"], MH["data"]
    files = [g["osm"].get("xml")] if g["source"] == "osm" else []
    if g["source"] == "pickle":
        files += [g["pickle"].get(k) for k in ("neighbors", "turns", "coords")]
    return [f for f in files + [data.get("trips_file")] if f]


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


rule manhattan_data:
    output:
        train=directory(f"{MH_DIR}/data/{{task}}/train"),
        test=directory(f"{MH_DIR}/data/{{task}}/test"),
        graph=f"{MH_DIR}/data/{{task}}/graph.graphml",
        pairs=f"{MH_DIR}/data/{{task}}/pairs.parquet",
        eval_pairs=f"{MH_DIR}/data/{{task}}/eval_pairs.parquet",
        meta=f"{MH_DIR}/data/{{task}}/meta.json",
    input:
        sources=mh_source_files,
        code=lib("data/manhattan.py", "data/streets/*.py", "data/dataset.py", "data/store.py"),
    params:
        benchmark="manhattan",
        data=lambda w: data_config("manhattan", MH),
    log:
        f"{OUT}/logs/data/manhattan/{{task}}.log",
    threads: DATA_THREADS["manhattan"]
    resources:
        mem_mb=4000,
        runtime=120,
    cache: "omit-software"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/make_data.py"


rule manhattan_eval:
    output:
        eval=f"{MH_DIR}/runs/{{run}}/eval.json",
        samples=f"{MH_DIR}/runs/{{run}}/samples.parquet",
    input:
        unpack(run_data),
        model=f"{MH_DIR}/runs/{{run}}/model.pt",
        model_code=model_code,
        code=lib("evaluation/manhattan.py", "evaluation/rank.py", "data/manhattan.py", "data/streets/*.py", "training/checkpoint.py"),
    params:
        cfg=run_cfg,
        eval=lambda w: MH["eval"],
    log:
        f"{OUT}/logs/eval/manhattan/{{run}}.log",
    threads: RUNTIME["num_threads"] or 1
    resources:
        **EVAL_RESOURCES,
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/evaluate.py"


rule manhattan_oracle:
    """The 'true world model' row: the same evaluation of a model that reads the true graph."""
    output:
        eval=f"{MH_DIR}/oracle/{{task}}/eval.json",
        samples=f"{MH_DIR}/oracle/{{task}}/samples.parquet",
    input:
        unpack(lambda w: data_files("manhattan", w.task)),
        code=lib("evaluation/manhattan*.py", "data/manhattan.py", "data/streets/*.py"),
    params:
        eval=lambda w: MH["eval"],
        seed=lambda w: MH["seeds"][0],
    log:
        f"{OUT}/logs/eval/manhattan/oracle_{{task}}.log",
    threads: 1
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/manhattan_oracle.py"


def recon_inputs(wildcards):
    task = RUNS[wildcards.name].task if wildcards.kind == "runs" else wildcards.name
    data = data_files("manhattan", task)
    return {"samples": f"{MH_DIR}/{wildcards.kind}/{wildcards.name}/samples.parquet",
            "graph": data["graph"], "meta": data["meta"]}


rule manhattan_reconstruct:
    output:
        mh_recon("{kind}", "{name}"),
    input:
        unpack(recon_inputs),
        code=lib("evaluation/reconstruction.py", "data/streets/*.py"),
    params:
        cfg=lambda w: MH["eval"]["reconstruction"],
        seed=lambda w: MH["seeds"][0],
    wildcard_constraints:
        kind="runs|oracle",
        name=r"[A-Za-z0-9_.\-]+",
    log:
        f"{OUT}/logs/reconstruct/{{kind}}_{{name}}.log",
    threads: 1
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/reconstruct.py"


rule table1:
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
        code=lib("tables.py"),
    log:
        f"{OUT}/logs/table1.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/table1.py"


def fig3_inputs(wildcards):
    if not MANHATTAN_MAPS:
        raise WorkflowError(f"fig3 cannot be built: {NO_MAPS_REASON}")
    return {"graph": data_files("manhattan", MH["tasks"][0])["graph"],
            "code": lib("plots/maps.py", "plots/vendor/*", "evaluation/reconstruction.py")}


rule fig3:
    output:
        **(fig3_outputs() if MH else {}),
    input:
        unpack(fig3_inputs),
        recons=lambda w: list(fig3_maps().values()),
    params:
        maps=lambda w: fig3_maps(),
        opts=lambda w: MH["maps"],
    log:
        f"{OUT}/logs/fig3.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/fig3.py"

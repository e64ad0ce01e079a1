"""`tokbench run` with no dataset or backbone is the benchmark on the embedded default: the
six synthetic datasets with the zoo's backbones (here its --smoke slice)."""

from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.data.synthetic import SYNTHETIC
from tokbench.methods import METHODS
from tokbench.store import load_results


def test_smoke_run_covers_every_dataset_and_method_with_the_zoo(tmp_path):
    r = CliRunner().invoke(cli, ["run", "--smoke", "--results", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    df = load_results(tmp_path)
    assert sorted(df["dataset"].unique()) == sorted(SYNTHETIC)
    assert set(df["method"]) == set(METHODS.names())
    assert sorted(df["p_ratio"].unique()) == [0.25, 0.75, 1.0]
    # The merging methods and STA miss P = 0.25: their floor on the 4-block zoo models is 36 and 41 % of
    # the FLOPs; frames misses 0.75 (6 of 8 slices: no uniform stride keeps 6).
    unreachable = df[df["status"] == "unreachable"]
    assert set(zip(unreachable["method"], unreachable["p_ratio"])) == {
        ("tome", 0.25), ("vid_tldr", 0.25), ("sta", 0.25), ("frames", 0.75)}
    reasons = {"tome": "merging cannot go below", "vid_tldr": "merging cannot go below",
               "sta": "pruning cannot go below", "frames": "no uniform stride keeps"}
    assert all(reasons[m] in e for m, e in zip(unreachable["method"], unreachable["error"]))
    total = len(df)
    df = df[df["status"] == "ok"]
    assert (df["clips"] == 16).all() and (df["backbone"] == "synth_tiny").all()
    timed = df[~df["privileged"]]  # the oracle reads labels: never timed
    assert df["gflops"].gt(0).all() and timed["clips_per_s"].gt(0).all()
    assert df[df["privileged"]]["throughput_skipped"].str.startswith("privileged").all()
    rlt = df[df["method"] == "rlt"]
    assert rlt["method_state.calibrated"].all() and rlt["method_state.tau"].notna().all()
    assert df[df["method"] == "tome"]["method_state.r_list"].map(len).eq(4).all()
    assert df[df["method"] == "sta"]["method_state.tokens"].map(len).eq(4).all()
    assert df[df["method"] == "resolution"]["method_state.side"].isin([3, 5]).all()  # P = 0.25, 0.75 on 6 x 6
    for dataset, weights in zip(df["dataset"], df["weights"]):
        assert weights.startswith(f"{dataset}.safetensors@")  # each dataset's own zoo backbone
    assert next(tmp_path.rglob("*.jsonl")).name.split("_")[1] == "smoke"
    again = CliRunner().invoke(cli, ["run", "--smoke", "--results", str(tmp_path)])
    assert again.exit_code == 0 and f"skipped {total} cells" in again.stderr

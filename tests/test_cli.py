"""The command line: listings, FLOP tables, run/resume, plots, and one-line errors that leave
the results folder untouched."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.errors import TokbenchError, UnknownNameError
from tokbench.methods import METHODS

TINY_FLOPS = ["--backbone", "test_tiny", "--metrics", "flops"]
TINY_SPEED = ["--backbone", "test_tiny", "--metrics", "flops,throughput", "--device", "cpu",
              "--repeats", "2", "--warmup", "0"]


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (folders as None) with its bytes."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """Module-scoped fixtures run before conftest's per-test cache fixture; keep them off
    the user's ~/.cache/tokbench too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKBENCH_CACHE", str(tmp_path_factory.mktemp("module_cache")))
        yield


@pytest.fixture(scope="module")
def flops_results(tmp_path_factory, module_cache):
    """A results folder holding one tiny FLOPs-only sweep (3 records)."""
    results = tmp_path_factory.mktemp("flops_results")
    r = invoke("run", *TINY_FLOPS, "--methods", "none,random", "--p-ratio", "0.5,1", "--results", results)
    assert r.exit_code == 0, r.stderr
    assert len(list(results.rglob("*.jsonl"))) == 1
    return results


@pytest.fixture(scope="module")
def speed_results(tmp_path_factory, module_cache):
    """A results folder holding a tiny FLOPs + throughput sweep."""
    results = tmp_path_factory.mktemp("speed_results")
    r = invoke("run", *TINY_SPEED, "--methods", "none,random", "--p-ratio", "0.5,1", "--results", results)
    assert r.exit_code == 0, r.stderr
    return results


# --------------------------------------------------------------------------- ls


def test_ls_methods_table():
    r = invoke("ls", "methods")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["name", "aliases", "summary"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert sorted(rows) == sorted(METHODS.names())
    col = lines[0].index("aliases")
    assert rows["none"][col:col + len("aliases")].strip() == "full"
    assert rows["random"][col:col + len("aliases")].strip() == ""
    assert "Keep ``round(p_ratio * N)`` tubelets" in rows["random"]


def test_ls_methods_json():
    r = invoke("ls", "methods", "--format", "json")
    assert r.exit_code == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert sorted(rows) == sorted(METHODS.names())
    assert rows["none"]["aliases"] == "full" and rows["none"]["uses_p_ratio"] is False
    assert rows["tome"]["options"] == "schedule='constant', r=None, prop_attn=True"
    assert rows["rlt"]["embeds"] == "kept" and rows["vid_tldr"]["aliases"] == "vidtldr"
    assert rows["random"]["options"] == "seed=0" and rows["random"]["embeds"] == "kept"
    assert rows["random"]["uses_p_ratio"] is True and rows["random"]["privileged"] is False


def test_ls_backbones():
    r = invoke("ls", "backbones")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["name", "tokens", "embed_dim", "depth", "num_heads", "input"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows == {
        "synth_tiny": ["synth_tiny", "288", "96", "4", "3", "16x48x48"],
        "test_tiny": ["test_tiny", "32", "32", "2", "2", "4x32x32"],
        "videomae_b": ["videomae_b", "1568", "768", "12", "12", "16x224x224"],
        "videomae_l": ["videomae_l", "1568", "1024", "24", "16", "16x224x224"],
        "videomae_s": ["videomae_s", "1568", "384", "12", "6", "16x224x224"],
    }
    j = invoke("ls", "backbones", "--format", "json")
    assert {row["name"]: row["tokens"] for row in json.loads(j.stdout)}["videomae_b"] == 1568


# --------------------------------------------------------------------------- flops

# The analytic MAC model of ViT-B (12nD^2 + 2n^2D + 10nD per block, 1536D per embedded tubelet),
# embedding only the kept tubelets (random drop); 180.49 for none.
PUBLISHED_GFLOPS = {0.1: 13.99, 0.2: 28.89, 0.3: 44.59, 0.4: 61.30, 0.5: 78.92, 0.6: 97.44, 0.7: 116.88,
                    0.8: 137.09, 0.9: 158.33}
PUBLISHED_TOKENS = {0.1: 157, 0.2: 314, 0.3: 470, 0.4: 627, 0.5: 784, 0.6: 941, 0.7: 1098, 0.8: 1254, 0.9: 1411}


def test_flops_csv_matches_published_numbers():
    r = invoke("flops", "--backbone", "videomae_b", "--methods", "none,random", "--p-ratio", "0.1:0.9",
               "--format", "csv")
    assert r.exit_code == 0, r.stderr
    header, body = r.stdout.split("\n", 1)
    assert header.startswith("# gflops: ")
    assert "1 multiply-add = 1 FLOP" in header
    rows = list(csv.DictReader(io.StringIO(body)))
    assert body.splitlines()[0] == "backbone,method,p_ratio,tokens_kept,gflops,params_m,embeds,status"
    assert len(rows) == 10
    none, *drops = rows
    assert (none["backbone"], none["method"], float(none["p_ratio"]), none["embeds"]) == ("videomae_b", "none", 1.0, "all")
    assert float(none["tokens_kept"]) == 1568
    assert float(none["gflops"]) == pytest.approx(180.49, abs=0.2)
    assert [float(d["p_ratio"]) for d in drops] == list(PUBLISHED_GFLOPS)
    for d in drops:
        p = float(d["p_ratio"])
        assert (d["method"], d["embeds"]) == ("random", "kept")
        assert float(d["tokens_kept"]) == PUBLISHED_TOKENS[p], p
        assert float(d["gflops"]) == pytest.approx(PUBLISHED_GFLOPS[p], abs=0.2), p
    assert len({d["params_m"] for d in rows}) == 1
    assert float(none["params_m"]) == pytest.approx(86.5, abs=0.1)  # ViT-B with a 400-class head


# --------------------------------------------------------------------------- run


def test_run_summary_and_resume(tmp_path):
    results = tmp_path / "results"
    args = ["run", *TINY_FLOPS, "--methods", "none,random", "--p-ratio", "0.5,1", "--results", results]
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["backbone", "method", "P", "status", "tokens", "GFLOPs", "params_M"]
    assert [line.split()[:5] for line in lines[2:]] == [
        ["test_tiny", "none", "1", "ok", "32"],
        ["test_tiny", "random", "0.5", "ok", "16"],
        ["test_tiny", "random", "1", "ok", "32"],
    ]
    assert "3 cells" in r.stderr and "wrote 3 records to" in r.stderr
    (written,) = results.rglob("*.jsonl")
    assert len(written.read_text().splitlines()) == 3
    before = snapshot(results)

    again = invoke(*args)
    assert again.exit_code == 0, again.stderr
    assert "skipped 3 cells" in again.stderr
    assert "wrote" not in again.stderr
    # A finished re-run prints the stored cells' table (issue 19), identical to the first.
    assert again.stdout == r.stdout
    assert snapshot(results) == before


def test_plot_writes_png_and_pdf(speed_results, tmp_path):
    out = tmp_path / "reports"
    r = invoke("plot", "--results", speed_results, "--out", out)
    assert r.exit_code == 0, r.stderr
    png, pdf = out / "throughput_vs_gflops_test_tiny.png", out / "throughput_vs_gflops_test_tiny.pdf"
    assert r.stdout.splitlines() == [str(png), str(pdf)]
    assert sorted(p.name for p in out.iterdir()) == [pdf.name, png.name]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_plot_without_throughput_is_a_one_line_error(flops_results, tmp_path):
    out = tmp_path / "reports"
    r = invoke("plot", "--results", flops_results, "--out", out)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("tokbench: error: ")
    assert "clips_per_s" in r.stderr
    assert not out.exists()


def test_plot_does_not_import_torch(speed_results, tmp_path):
    out = tmp_path / "reports"
    code = textwrap.dedent(f"""
        import sys
        from tokbench.cli import cli
        code = cli.main(["plot", "--results", {str(speed_results)!r}, "--out", {str(out)!r}],
                        standalone_mode=False)
        print("exit", code)
        print("torch imported:", "torch" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "exit 0" in proc.stdout, proc.stdout + proc.stderr
    assert "torch imported: False" in proc.stdout, proc.stdout
    assert (out / "throughput_vs_gflops_test_tiny.png").stat().st_size > 0


# --------------------------------------------------------------------------- bad input

COMMON = "<common run options>"  # stands for TINY_FLOPS --results <the populated folder>
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

# (extra arguments, fragment of the message); "run" cases add TINY_FLOPS and --results first.
BAD_RUN = {
    "unknown_method": (["--methods", "rnadom"], "Did you mean 'random'"),
    "unknown_backbone": (["--backbone", "videomae_x"], "unknown backbone"),
    "p_zero": (["--p-ratio", "0:0.5"], "outside (0, 1]"),
    "p_above_one": (["--p-ratio", "1.5"], "outside (0, 1]"),
    "p_step_zero": (["--p-ratio", "0.1:0.9:0"], "step must be > 0"),
    "p_reversed": (["--p-ratio", "0.9:0.1"], "greater than stop"),
    "p_text": (["--p-ratio", "abc"], "not a number"),
    "p_empty": (["--p-ratio", ""], "empty --p-ratio"),
    "methods_empty": (["--methods", ""], "empty method name in ''"),
    "methods_comma": (["--methods", "none,"], "empty method name in 'none,'"),
    "seed_negative": (["--methods", "random(seed=-1)"], "seed must be a non-negative integer"),
    "unknown_option": (["--methods", "random(sed=1)"], "has no option 'sed'"),
    "malformed_spec": (["--methods", "random("], "malformed method spec"),
    "unknown_metric": (["--metrics", "flop"], "unknown metric"),
    "batch_size": (["--batch-size", "0"], "--batch-size must be >= 1"),
    "repeats": (["--repeats", "0"], "--repeats must be >= 1"),
    "warmup": (["--warmup", "-1"], "--warmup must be >= 0"),
    "checkpoint_missing": (["--checkpoint", "/does/not/exist"], "checkpoint not found: /does/not/exist"),
    "checkpoint_garbage": (["--checkpoint", "{bad}"], "cannot read checkpoint {bad}"),
    "checkpoint_mismatch": (["--checkpoint", "{tiny}", "--backbone", "videomae_s"], "does not fit backbone videomae_s"),
    "device_tpu": (["--device", "tpu"], "device 'tpu'"),
    "bad_flag": (["--badflag"], "No such option"),
}
BAD_OTHER = {
    "ls_widgets": (["ls", "widgets"], "Invalid value"),
    "flops_p_ratio": (["flops", "--p-ratio", "2"], "outside (0, 1]"),
    "plot_missing": (["plot", "--results", "/does/not/exist"], "results not found"),
}
CASES = [pytest.param(["run", COMMON, *args], fragment, id=name) for name, (args, fragment) in BAD_RUN.items()]
CASES.append(pytest.param(["run", COMMON, "--device", "cuda"], "CUDA is not available", id="device_cuda",
                          marks=NO_CUDA))
CASES += [pytest.param(args, fragment, id=name) for name, (args, fragment) in BAD_OTHER.items()]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    (folder / "bad.pth").write_bytes(random.Random(0).randbytes(512))
    from tokbench.backbones import create_backbone

    torch.save(create_backbone("test_tiny").state_dict(), folder / "tiny.pth")
    return {"bad": str(folder / "bad.pth"), "tiny": str(folder / "tiny.pth")}


@pytest.mark.parametrize(("args", "fragment"), CASES)
def test_bad_input_is_one_line_and_touches_nothing(args, fragment, flops_results, checkpoints):
    common = [*TINY_FLOPS, "--results", str(flops_results)]
    argv = [x for a in args for x in (common if a == COMMON else [a.format(**checkpoints)])]
    fragment = fragment.format(**checkpoints)
    before = snapshot(flops_results)
    r = invoke(*argv)
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("tokbench: error: "), r.stderr
    assert fragment in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout == ""
    assert snapshot(flops_results) == before


def test_debug_shows_the_traceback(flops_results):
    before = snapshot(flops_results)
    r = invoke("--debug", "run", *TINY_FLOPS, "--methods", "rnadom", "--results", flops_results)
    assert isinstance(r.exception, UnknownNameError)
    assert isinstance(r.exception, TokbenchError)
    assert "Did you mean 'random'" in str(r.exception)
    assert r.exc_info is not None and r.exc_info[2] is not None  # a traceback, not a message
    assert r.exit_code == 1
    assert "tokbench: error:" not in r.stderr
    assert snapshot(flops_results) == before


@pytest.mark.parametrize("command", [[], ["ls"], ["run"], ["flops"], ["plot"]], ids=lambda c: c[0] if c else "cli")
def test_help_has_examples(command):
    r = invoke(*command, "--help")
    assert r.exit_code == 0, r.stderr
    assert "Example" in r.stdout
    assert r.stdout.startswith("Usage: ")


def test_flops_reports_unreachable_points_instead_of_failing():
    from tokbench.errors import UnreachableError
    from tokbench.methods import METHODS, Method

    class Floor(Method):
        name = "floor"

        def __init__(self, *, p_ratio: float = 1.0) -> None:
            super().__init__(p_ratio=p_ratio)
            if p_ratio < 0.5:
                raise UnreachableError("floor: P below 0.5 is out of reach")

    with METHODS.temporary("floor", Floor):
        r = invoke("flops", "--backbone", "test_tiny", "--methods", "floor", "--p-ratio", "0.25,0.5", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout.split("\n", 1)[1])))
    assert [(row["p_ratio"], row["status"], row["gflops"]) for row in rows][0] == (
        "0.25", "unreachable: floor: P below 0.5 is out of reach", ""
    )
    assert rows[1]["status"] == "ok" and float(rows[1]["gflops"]) > 0


def test_run_with_a_local_checkpoint_records_its_identity(tmp_path):
    import hashlib

    import torch

    from tokbench.backbones import create_backbone
    from tokbench.store import load_results

    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": create_backbone("test_tiny").state_dict()}, ckpt)
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:12]
    r = invoke("run", "--backbone", "test_tiny", "--methods", "none", "--metrics", "flops",
               "--checkpoint", str(ckpt), "--results", str(tmp_path / "results"))
    assert r.exit_code == 0, r.stderr
    df = load_results(tmp_path / "results")
    assert df["weights"].tolist() == [f"tiny.pth@{digest}"] and df["status"].tolist() == ["ok"]


def test_bare_command_shows_help():
    r = invoke()
    assert r.exit_code == 0 and "Commands:" in r.stdout and r.stderr == ""


def test_ls_datasets_lists_all_twelve():
    r = invoke("ls", "datasets", "--format", "json")
    assert r.exit_code == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert sorted(rows) == sorted([
        "kinetics400", "ssv2", "epic-kitchens-100", "diving48", "jester", "charades",
        "synth-appearance", "synth-motion", "synth-egocentric", "synth-sequence", "synth-gesture", "synth-multilabel",
    ])
    assert rows["synth-egocentric"]["classes"] == "5x6" and rows["charades"]["metric"] == "mAP"
    assert "verbs: take" in rows["synth-egocentric"]["class_names"]


def test_preview_draws_a_contact_sheet(tmp_path):
    out = tmp_path / "sheet.png"
    r = invoke("preview", "--dataset", "synth-gesture", "--out", out, "--clips", "2")
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and r.stdout.strip() == str(out)


def test_preview_of_a_real_dataset_needs_its_folder(tmp_path):
    r = invoke("preview", "--dataset", "ssv2", "--out", tmp_path / "x.png")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "needs its data folder" in r.stderr and "--data-root" in r.stderr
    r = invoke("preview", "--dataset", "ssv2", "--data-root", tmp_path / "nope", "--out", tmp_path / "x.png")
    assert r.exit_code == 2 and "tokbench: error:" in r.stderr and not (tmp_path / "x.png").exists()


def test_verbose_cards_fit_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for what in ("datasets", "methods"):
        r = invoke("ls", what, "-v")
        assert r.exit_code == 0, r.stderr
        lines = r.stdout.splitlines()
        assert max(map(len, lines)) <= 80, what
        names = [line for line in lines if line and not line.startswith(" ")]
        assert len(names) == len(invoke("ls", what, "--format", "json").stdout.split('"name"')) - 1
    assert "  decides:" in invoke("ls", "datasets", "-v").stdout


def test_flops_prints_token_counts_as_integers():
    r = invoke("flops", "--backbone", "test_tiny", "--methods", "none,random", "--p-ratio", "0.5")
    assert r.exit_code == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[3:]]
    assert [row[3] for row in rows] == ["32", "16"]  # not 32.0

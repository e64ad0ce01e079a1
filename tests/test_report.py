"""The report's numbers on hand-made frames, and `tokbench report` on a small results file."""

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.report.analysis import dataset_table, dominance_summary, dominates, speedup_at_equal_accuracy


def points(method, rows, dataset="d1", privileged=False):
    return pd.DataFrame([{"dataset": dataset, "method": method, "method_id": method, "p_ratio": p, "gflops": g,
                          "accuracy": a, "clips_per_s": s, "tokens_kept": 10 * p, "privileged": privileged}
                         for p, g, a, s in rows])


A = points("a", [(0.1, 1.0, 0.60, 400.0), (0.5, 5.0, 0.80, 100.0)])
B = points("b", [(0.1, 1.0, 0.50, 450.0), (0.5, 6.0, 0.80, 90.0)])
C = points("c", [(0.1, 0.5, 0.40, 500.0), (0.5, 5.0, 0.90, 100.0)])


def test_dominates_needs_every_point_covered_and_one_strictly():
    assert dominates(A, B)  # (1, .6) covers (1, .5); (5, .8) covers (6, .8)
    assert not dominates(B, A)
    assert not dominates(A, C) and not dominates(C, A)  # each has a point the other cannot match
    assert not dominates(A, A)  # equal points are not strictly better
    assert dominates(A, B, x="clips_per_s") is False  # b's 450 clips/s point is faster than any of a's


def test_dominance_summary_sentences_leave_out_privileged_and_full():
    df = pd.concat([A, B, points("a", [(0.1, 1, 0.6, 1), (0.5, 5, 0.8, 1)], "d2"),
                    points("b", [(0.1, 1, 0.7, 1), (0.5, 5, 0.9, 1)], "d2"),
                    points("oracle", [(0.1, 0.1, 1.0, 1)], privileged=True),
                    points("none", [(1.0, 10.0, 0.95, 50.0)])], ignore_index=True)
    assert dominance_summary(df) == ["a Pareto-dominates b on 1 of 2 panels (d1)",
                                     "b Pareto-dominates a on 1 of 2 panels (d2)"]


def test_speedup_at_equal_accuracy_interpolates_the_path():
    full = points("none", [(1.0, 10.0, 0.85, 50.0)])
    # c reaches 0.85 halfway between (500, .4) and (100, .9)? No: at t = 0.9 of the way: 500 - 0.9 * 400 = 140.
    assert speedup_at_equal_accuracy(C, full) == pytest.approx(140.0 / 50.0)
    assert speedup_at_equal_accuracy(A, full) is None  # never reaches 0.85
    at = points("e", [(0.3, 1.0, 0.85, 200.0), (0.6, 2.0, 0.95, 75.0)])
    assert speedup_at_equal_accuracy(at, full) == pytest.approx(4.0)  # a point exactly at the reference


def test_dataset_table_marks_the_front():
    table = dataset_table(pd.concat([A, B, points("oracle", [(0.1, 0.1, 1.0, None)], privileged=True)]))
    rows = {line.split("|")[1].strip() + line.split("|")[2].strip(): line for line in table.splitlines()[2:]}
    assert rows["a0.1"].rstrip().endswith("| yes |") and rows["a0.5"].rstrip().endswith("| yes |")
    assert rows["b0.5"].rstrip().endswith("|  |")
    assert "oracle (privileged)" in table and "| – |" in table  # no throughput for the oracle


def small_records(extra=()):
    records = []
    for method, rows in (("none", [(1.0, 0.2, 0.9, 100.0)]), ("random", [(0.5, 0.1, 0.7, 180.0), (0.9, 0.18, 0.9, 110.0)])):
        for p, g, a, s in rows:
            records.append({"cell_id": f"{method}-{p}", "status": "ok", "dataset": "synth-motion", "run_id": "run-1",
                            "backbone": "synth_tiny", "method": method, "clips": 500, "split": "val", "seed": 0,
                            "method_id": method, "p_ratio": p, "gflops": g, "top1": a, "clips_per_s": s,
                            "privileged": False, "tokens_kept": 288 * p, "device": "cpu", "batch_size": 1,
                            "command": ["tokbench", "run", "--methods", "none,random"],
                            "env": {"device_name": "cpu-x", "torch_version": "2.14.1", "git_revision": "abcdef123"}})
    records.append({"cell_id": "rlt-0.1", "status": "unreachable", "dataset": "synth-motion", "backbone": "synth_tiny",
                    "method": "rlt", "method_id": "rlt", "p_ratio": 0.1, "privileged": False, "run_id": "run-1",
                    "error": "rlt: P-Ratio 0.1 is below 0.125: the first of the 8 temporal slices is always kept"})
    return records + list(extra)


def test_report_command_writes_markdown_and_figures(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in small_records()))
    r = CliRunner().invoke(cli, ["report", "--results", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    text = (out / "report.md").read_text()
    assert "| synth-motion | 1.10× |" in text and "### synth-motion (top1)" in text and "cpu-x" in text
    assert (out / "accuracy_vs_gflops.png").exists() and "![accuracy_vs_gflops]" in text
    assert "![accuracy_vs_gflops_synth-motion](accuracy_vs_gflops_synth-motion.png)" in text
    # The selection pictures: one grid (a clip row, then a row per method that reduces), captions under it.
    assert "![viz_grid](viz_grid.png)" in text and (out / "viz_grid.png").exists() and not list(out.glob("viz_random*"))
    assert "- random at P = 0.5: 144 of 288 tokens kept" in text
    # Contents, leaderboard, the labelled point-estimate summary, the provenance with the command.
    assert "- [Leaderboard](#leaderboard)" in text and "- [Provenance](#provenance)" in text
    # Nothing fits 10 % or 30 % of the full model; random at P = 0.5 costs exactly 50 %.
    assert "| synth-motion (top1) | – | – | **random** 70.0 (P 0.5, 50 %) |" in text
    assert "only exactly equal accuracies tie" in text
    assert "## Summary (point estimates, no significance test)" in text
    assert "| run-1 |" in text and "`tokbench run --methods none,random`" in text and "abcdef1" in text
    assert "| synth-motion | val | 500 |" in text
    # The unreachable cell is in the table, with its reason under it.
    assert "| rlt | unreachable [1] |" in text
    assert "- [1] rlt unreachable at P = 0.1: P-Ratio 0.1 is below 0.125" in text
    tables = sorted(p.name for p in (out / "tables").iterdir())
    for stem in ("leaderboard", "pareto_front", "speedup", "synth-motion_accuracy", "synth-motion_cost"):
        assert {f"{stem}.csv", f"{stem}.md", f"{stem}.tex"} <= set(tables), stem
    assert "cells.csv" in tables
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == text.count("![")  # every figure embedded
    assert "<th>method</th>" in page and '<h3 id="synth-motion-top1">synth-motion (top1)</h3>' in page
    assert '<a href="#leaderboard">Leaderboard</a>' in page and '<h2 id="leaderboard">' in page
    assert "used 4 records of" in r.stderr
    quiet = CliRunner().invoke(cli, ["report", "--results", str(path), "--out", str(tmp_path / "q"), "--no-viz"])
    assert quiet.exit_code == 0 and not list((tmp_path / "q").glob("viz_*"))
    bad = CliRunner().invoke(cli, ["report", "--results", str(path), "--methods", "lookwhen"])
    assert bad.exit_code == 2 and "no results with method 'lookwhen'" in bad.stderr
    budgets = CliRunner().invoke(cli, ["report", "--results", str(path), "--out", str(tmp_path / "b"), "--no-viz",
                                       "--budgets", "ten"])
    assert budgets.exit_code == 2 and "--budgets 'ten'" in budgets.stderr


def test_report_summary_with_a_significance_test(tmp_path):
    """The lead's hook: with better(p, q), the summary keeps only claims a paired test supports."""
    from tokbench.report.document import write_report

    df = pd.json_normalize(small_records([
        {"cell_id": "motion-0.5", "status": "ok", "dataset": "synth-motion", "backbone": "synth_tiny",
         "method": "motion", "method_id": "motion", "p_ratio": 0.5, "gflops": 0.1, "top1": 0.6, "privileged": False}]))
    point = write_report(df, tmp_path / "point").read_text()
    assert "random Pareto-dominates motion on 1 of 1 panels" in point

    def never(p, q):
        return False

    paired = write_report(df, tmp_path / "paired", better=never).read_text()
    assert "## Summary (paired test, 95 %)" in paired and "[Summary (paired test, 95 %)](#summary-paired-test-95-)" in paired
    assert "no method significantly Pareto-dominates another" in paired
    assert "motion and random are indistinguishable on 1 of 1 panels" in paired


def test_committed_report_rebuilds_from_the_committed_records(tmp_path, monkeypatch):
    """`tokbench report --results results/synthetic` in a fresh clone gives the committed report."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    r = CliRunner().invoke(cli, ["report", "--results", "results/synthetic", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    hint = "rebuild it: tokbench report --results results/synthetic --out reports/synthetic"
    committed = root / "reports" / "synthetic"
    assert (tmp_path / "report.md").read_text() == (committed / "report.md").read_text(), hint
    readme_picture = "viz_lookwhen_p0.1.png"  # the README's (tokbench viz ... --p-ratio 0.1 --out reports/synthetic/...)
    assert sorted([p.name for p in tmp_path.glob("*.png")] + [readme_picture]) == sorted(
        p.name for p in committed.glob("*.png"))
    for table in (tmp_path / "tables").iterdir():
        assert table.read_text() == (committed / "tables" / table.name).read_text(), (table.name, hint)
    readme = (root / "README.md").read_text()
    for line in (committed / "report.md").read_text().splitlines():
        if line.startswith("- lookwhen Pareto-dominates"):
            assert line in readme, "the README quotes the committed report's dominance summary"


def test_html_page_of_report_markdown(tmp_path):
    from tokbench.report.html import markdown_to_html, write_html

    (tmp_path / "f.png").write_bytes(b"\x89PNG fake")
    md = ("# Title <x>\n\nSome *text* with `a<b` and **bold**.\nSame paragraph.\n\n- one\n- two\n\n"
          "| m | acc |\n|---|---:|\n| a | 1.0 |\n| x\\|y | [csv](t.csv) |\n\n![f](f.png)\n\n![gone](missing.png)\n"
          "\n## Per dataset (top1)\n\nSee [the leaderboard](#per-dataset-top1).\n")
    body = markdown_to_html(md, tmp_path)
    assert '<h1 id="title-x">Title &lt;x&gt;</h1>' in body and '<h2 id="per-dataset-top1">' in body
    assert '<p>See <a href="#per-dataset-top1">the leaderboard</a>.</p>' in body
    assert '<tr><td>x|y</td><td><a href="t.csv">csv</a></td></tr>' in body
    assert "<p>Some <em>text</em> with <code>a&lt;b</code> and <strong>bold</strong>. Same paragraph.</p>" in body
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in body
    assert "<thead><tr><th>m</th><th>acc</th></tr></thead>" in body and "<tr><td>a</td><td>1.0</td></tr>" in body
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in body  # base64 of the file's bytes
    assert 'src="missing.png"' in body  # a missing image stays a link
    (tmp_path / "report.md").write_text(md)
    page = write_html(tmp_path / "report.md").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Title &lt;x&gt;</title>" in page


def test_plot_and_report_use_the_newest_record_of_a_cell_measured_twice(tmp_path):
    rows = [("none", 1.0, 0.9, "2026-01-01T00:00:00"), ("random", 0.5, 0.2, "2026-01-01T00:00:01"),
            ("random", 0.5, 0.7, "2026-01-02T00:00:00")]  # re-measured later: 0.7 replaces 0.2
    records = [{"status": "ok", "dataset": "synth-motion", "backbone": "synth_tiny", "method": m, "method_id": m,
                "p_ratio": p, "gflops": 0.2 * p, "top1": a, "clips_per_s": 100 / p, "privileged": False,
                "tokens_kept": 288 * p, "cell_id": f"{m}-{p}", "created_utc": t} for m, p, a, t in rows]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    r = CliRunner().invoke(cli, ["report", "--results", str(path), "--out", str(tmp_path / "out"), "--no-viz"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "out" / "report.md").read_text()
    assert "2 measured cells" in text and "| random | **70.0** |  |" in text and "20.0" not in text


@pytest.mark.slow
def test_report_page_renders_in_chromium(tmp_path):
    """The HTML page in a real browser (headless Chromium, when installed): it renders, the
    figures load (a screenshot with content far below the first screen) and links resolve."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in small_records()))
    r = CliRunner().invoke(cli, ["report", "--results", str(path), "--out", str(tmp_path / "out"), "--no-viz"])
    assert r.exit_code == 0, r.output
    page = tmp_path / "out" / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1280,6000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert '<h2 id="leaderboard">' in dom and dom.count("<img") == page.read_text().count("<img")
    for anchor in re.findall(r'href="#([^"]+)"', dom):
        assert f'id="{anchor}"' in dom, anchor  # every contents link has its heading
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    ink = (pixels.min(axis=2) < 0.9).any(axis=1)  # rows with something drawn
    assert ink[:400].any() and ink[1500:].any(), "the page (title, then the figures below) did not render"

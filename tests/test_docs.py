"""The README and CI stay in sync with the code."""

import re
from pathlib import Path

from tokbench.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.match(r"# tokbench\n\n```bash\n(.*?)```", text, re.S)
    assert block, "the README must open with the fresh-machine commands"
    return [line for line in block[1].splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    install_and_run, install_and_test = readme_commands()
    assert install_and_run == "pip install -c constraints.txt -e . && tokbench run"
    assert install_and_test == 'pip install -c constraints.txt -e ".[test]" && pytest'


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_every_method_is_documented_in_the_readme():
    text = (ROOT / "README.md").read_text()
    for name in METHODS.names():
        assert f"| `{name}`" in text, f"add {name} to the README's methods table"


def test_constraints_pin_the_tested_torch_pair():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_every_dataset_is_documented_in_the_readme():
    from tokbench.data import DATASETS

    text = (ROOT / "README.md").read_text()
    for name in DATASETS.names():
        assert f"`{name}`" in text, f"add {name} to the README's datasets section"


def test_relative_links_in_the_readme_and_docs_point_to_files():
    """No link to a file that is not in the repository (the README once cited docs/METHODS.md)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
        targets += re.findall(r"`((?:docs|tokbench|examples|tests|reports)/[\w./+-]+?)(?:::\w+(?:\.\w+)?)?`", text)
        assert targets, page
        for target in targets:
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists() or (ROOT / target).exists(), f"{page.name}: {target}"
    assert "[`docs/plugins.md`](docs/plugins.md)" in (ROOT / "README.md").read_text()


def test_plugin_page_names_the_real_hooks():
    from tokbench.methods import Method, SelectionMethod

    text = (ROOT / "docs" / "plugins.md").read_text()
    hooks = ("validate", "bind", "calibrate", "setup", "input_video", "before_embed", "after_embed", "after_attn",
             "after_block", "networks",
             "decision_networks", "extra_params", "attention_needs")
    for hook in hooks:
        assert f"`{hook}(" in text and callable(getattr(Method, hook)), hook
    for attribute in ("attn_needs", "uses_p_ratio", "privileged", "cost_depends_on_content", "cost_set_by_token_counts",
                      "needs_calibration", "size_weighted_pool", "variable_length"):
        assert f"`{attribute}`" in text and hasattr(Method, attribute), attribute
    assert "`scores_need_tokens = False`" in text and hasattr(SelectionMethod, "scores_need_tokens")


def test_readme_leaderboard_is_the_committed_reports():
    report = (ROOT / "reports" / "synthetic" / "report.md").read_text()
    table = re.search(r"\n(\| dataset \| ≤ 10 % GFLOPs .*?)\n\n", report, re.S)
    assert table, "the committed report has a leaderboard"
    assert table[1] in (ROOT / "README.md").read_text(), "copy the committed report's leaderboard into the README"

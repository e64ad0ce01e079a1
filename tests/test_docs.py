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

"""Third-party methods: entry points, --plugin, TOKBENCH_PLUGINS, their errors, and the worked
example package (examples/tokbench-centre) through run and check like a built-in."""

import json
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokbench import plugins
from tokbench.cli import cli
from tokbench.methods import METHODS, build_method

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tokbench-centre"

PLUGIN = '''
import torch
from tokbench.methods import SelectionMethod, register_method

@register_method("{name}")
class Last(SelectionMethod):
    """Keep the last tubelets (a test plug-in)."""
    scores_need_tokens = False

    def scores(self, clips, tokens, num_patches):
        return torch.arange(num_patches, dtype=torch.float32).expand(clips.batch_size, -1)
'''


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Plug-ins register into the global registry: undo it after each test."""
    items, aliases = dict(METHODS._items), dict(METHODS._aliases)
    modules = set(sys.modules)
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(plugins, "_DISTRIBUTIONS", {})
    monkeypatch.delenv("TOKBENCH_PLUGINS", raising=False)
    yield
    METHODS._items.clear()
    METHODS._items.update(items)
    METHODS._aliases.clear()
    METHODS._aliases.update(aliases)
    for name in set(sys.modules) - modules:  # only the plug-ins (torch may import lazily meanwhile)
        origin = str(getattr(sys.modules[name], "__file__", None) or "")
        if origin.startswith((tempfile.gettempdir(), str(EXAMPLE))):
            del sys.modules[name]


def fake_distribution(root: Path, package: str, entry_points: str, files: dict[str, str]) -> None:
    """An installed-looking package on sys.path: module files plus a dist-info with entry points."""
    for name, text in files.items():
        (root / name).write_text(text)
    info = root / f"{package}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[tokbench.methods]\n{entry_points}\n")


def test_plugin_module_and_file(tmp_path, monkeypatch):
    (tmp_path / "my_methods.py").write_text(PLUGIN.format(name="last"))
    monkeypatch.chdir(tmp_path)
    assert plugins.load_plugin("my_methods") == ["last"]
    assert plugins.load_plugin("my_methods") == []  # idempotent
    kept = build_method("last", p_ratio=0.5).before_embed(_clips(), 8)
    assert kept.tolist() == [[4, 5, 6, 7]]
    (tmp_path / "other.py").write_text(PLUGIN.format(name="last2"))
    assert plugins.load_plugin(str(tmp_path / "other.py")) == ["last2"]
    assert plugins.method_origin(METHODS.get("last2")) == "tokbench_plugin_other"
    assert plugins.method_origin(METHODS.get("random")) == "tokbench"


def _clips():
    import torch

    from tokbench.tokens import Clips

    return Clips(video=torch.zeros(1, 3, 2, 8, 8), ids=torch.zeros(1, dtype=torch.long))


def test_entry_points_register_modules_and_classes_and_skip_broken_ones(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "fake_tokbench_pkg", "\n".join([
        "byhand = fake_mod_a",  # a module that registers itself
        "byclass = fake_mod_b:Plain",  # a class: registered under the entry point's name
        "broken = fake_mod_c",  # raises on import: a warning, not a dead CLI
    ]), {
        "fake_mod_a.py": PLUGIN.format(name="byhand"),
        "fake_mod_b.py": "from tokbench.methods import Method\nclass Plain(Method):\n    '''Does nothing.'''\n",
        "fake_mod_c.py": "raise RuntimeError('needs a GPU library')\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    warnings = []
    names = plugins.load_entry_points(warn=warnings.append)
    assert sorted(names) == ["byclass", "byhand"] and "byclass" in METHODS and "byhand" in METHODS
    assert warnings == ["method plug-in 'broken' from fake_tokbench_pkg was not loaded: RuntimeError: needs a GPU library"]
    assert plugins.method_origin(METHODS.get("byclass")) == "fake_mod_b (fake_tokbench_pkg 0.3)"
    # Through the CLI: listed like a built-in, the broken one a one-line warning.
    r = CliRunner().invoke(cli, ["ls", "methods", "-v", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["byhand"]["summary"] == "Keep the last tubelets (a test plug-in)."
    assert "tokbench: warning: method plug-in 'broken'" in r.stderr


def test_installed_plugins_that_exit_or_lack_a_default_are_warnings_and_ls_still_lists(tmp_path, monkeypatch):
    """A plug-in calling sys.exit() at import ended tokbench silently; one whose option has no
    default broke 'ls methods' (the listing builds each method with its defaults)."""
    needy = ("from tokbench.methods import Method, register_method\n\n\n@register_method('needy')\n"
             "class Needy(Method):\n    def __init__(self, *, p_ratio: float = 1.0, k: int) -> None:\n"
             "        super().__init__(p_ratio=p_ratio)\n        self.k = k\n")
    fake_distribution(tmp_path, "fake_tokbench_pkg2", "exits = fake_mod_x\nneedy = fake_mod_y\nfine = fake_mod_z", {
        "fake_mod_x.py": "import sys\nsys.exit(3)\n", "fake_mod_y.py": needy,
        "fake_mod_z.py": PLUGIN.format(name="fine"),
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    r = CliRunner().invoke(cli, ["ls", "methods", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert {"fine", "random"} <= {row["name"] for row in json.loads(r.stdout)} and "needy" not in METHODS
    assert r.stderr.splitlines() == [
        "tokbench: warning: method plug-in 'exits' from fake_tokbench_pkg2 was not loaded: it called sys.exit(3) "
        "while being imported",
        "tokbench: warning: method plug-in 'needy' from fake_tokbench_pkg2 was not loaded: TypeError: method "
        "'needy' (Needy): option 'k' has no default; every option needs one, since a spec may leave it out "
        "(write k=... in __init__)",
    ]


@pytest.mark.parametrize("text,target,message", [
    (None, "no_such_module_xyz", "--plugin no_such_module_xyz: no module named 'no_such_module_xyz'"),
    (None, "missing.py", "--plugin missing.py: no such file"),
    ("x = 1\n", "empty_plugin", "--plugin empty_plugin registered no method"),
    ("import not_installed_dependency\n", "needs_dep", "--plugin needs_dep failed to import: ModuleNotFoundError"),
    (PLUGIN.format(name="random"), "clash", "method 'random' is already registered"),
])
def test_bad_plugins_are_one_line_and_exit_2(tmp_path, monkeypatch, text, target, message):
    if text is not None:
        (tmp_path / f"{target}.py").write_text(text)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["--plugin", target, "ls", "methods"])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_environment_variable_loads_plugins(tmp_path, monkeypatch):
    (tmp_path / "env_methods.py").write_text(PLUGIN.format(name="fromenv"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKBENCH_PLUGINS", "env_methods")
    r = CliRunner().invoke(cli, ["ls", "methods"])
    assert r.exit_code == 0 and "fromenv" in r.stdout


def test_worked_example_runs_and_passes_its_committed_baseline(tmp_path, monkeypatch):
    """What examples/tokbench-centre/ci.yml does, with --plugin instead of pip install."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    now = tmp_path / "now"
    r = CliRunner().invoke(cli, ["--plugin", "tokbench_centre", "run", "--smoke", "--methods", "centre",
                                 "--results", str(now)])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for path in now.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(records) == 12 and {r["status"] for r in records} == {"ok"}
    # The module, plus the package version when an (editable) install's metadata is on the path.
    assert {r["method_origin"].split(" (")[0] for r in records} == {"tokbench_centre"}
    check = CliRunner().invoke(cli, ["--plugin", "tokbench_centre", "check", "--baseline", str(EXAMPLE / "baseline"),
                                     "--results", str(now), "--no-speed", "--accuracy-tol", "0.07"])
    assert check.exit_code == 0, check.output
    assert "**0 regression(s)** in 12 compared cells" in check.stdout
    # Plots and reports read the records like a built-in's (report pictures need the plug-in loaded).
    rep = CliRunner().invoke(cli, ["--plugin", "tokbench_centre", "report", "--results", str(now),
                                   "--out", str(tmp_path / "rep")])
    assert rep.exit_code == 0, rep.output
    assert (tmp_path / "rep" / "viz_grid.png").exists()
    assert "centre at P = 0.5: 144 of 288 tokens kept" in (tmp_path / "rep" / "report.md").read_text()


def test_example_readme_and_ci_snippet_match_the_package():
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points."tokbench.methods"]\ncentre = "tokbench_centre"' in pyproject
    ci = (EXAMPLE / "ci.yml").read_text()
    assert "tokbench run --smoke --methods centre" in ci and "tokbench check --baseline examples/tokbench-centre/baseline" in ci
    assert "examples/tokbench-centre" in (ROOT / "README.md").read_text()

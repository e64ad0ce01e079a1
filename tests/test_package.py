"""Package surface: the lazy public API, and that plotting-side imports stay torch-free."""

import subprocess
import sys

import tokbench


def test_public_api_resolves():
    for name in tokbench.__all__:
        assert getattr(tokbench, name) is not None
    assert set(tokbench.__all__) == set(tokbench._API)


def test_import_tokbench_and_store_do_not_import_torch():
    code = "import sys, tokbench, tokbench.store, tokbench.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _loaded_after(module: str) -> set[str]:
    """The tokbench modules a fresh interpreter has loaded after ``import module``."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('tokbench')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_layers_import_downwards_only():
    """The backbone needs only the contract at the bottom (tokbench.hooks), never a method;
    the zoo only finds shipped files; the store and predictions read files without torch."""
    backbones = _loaded_after("tokbench.backbones")
    assert not {m for m in backbones if m.startswith("tokbench.methods")}, backbones
    assert "tokbench.hooks" in backbones
    assert _loaded_after("tokbench.zoo") <= {"tokbench", "tokbench.zoo", "tokbench.errors"}
    for module in ("tokbench.store", "tokbench.predictions", "tokbench.cache", "tokbench.weights"):
        loaded = _loaded_after(module)
        assert not {m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in
                    ("methods", "backbones", "data", "benchmark", "train", "report")}, (module, loaded)

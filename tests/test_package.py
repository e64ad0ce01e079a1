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

"""Tiny settings for every registered method, used by the conformance tests.

A registered method without an entry here fails ``test_every_method_has_settings``:
add ``"name": {kwargs}`` (the options a tiny test run needs) when you register one.
"""

from pathlib import Path

ASSETS = Path(__file__).parent / "assets"

METHOD_SETTINGS: dict[str, dict] = {
    "none": {},
    "random": {"seed": 3},
    "tome": {},
    "vid_tldr": {},
    "rlt": {},
    "sta": {},
    "frames": {},
    "resolution": {},
    "motion": {},
    "attention": {},
    "oracle": {},
    # A random selector of test_tiny's width (seed 0), made by LiteSelector(32).
    "lite": {"selector": str(ASSETS / "lite_test_tiny.safetensors")},
    # Random difficulty model and LookWhen selector for test_tiny (seed 0; their cards say how).
    "lite++": {"selector": str(ASSETS / "lite_test_tiny.safetensors"),
               "difficulty": str(ASSETS / "lite_pp_difficulty_test_tiny.safetensors")},
    "lookwhen": {"selector": str(ASSETS / "lookwhen_selector_test_tiny.safetensors"), "extractor": "backbone"},
}

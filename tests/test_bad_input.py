"""Bad input on every command: exit status 2, one line on stderr that starts with
``tokbench: error:`` and says what was wrong, no traceback, and nothing on disk changed.

Every case runs against one folder of inputs (``world``): a populated results folder, one with
accuracy records, garbage results, damaged checkpoints, a real-dataset folder whose only video
is random bytes, and a plain file to put in the way of outputs. The whole folder must be
byte-identical after each case. Bad input must fail before any training or measuring starts,
so nothing here trains.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokbench.cli import cli

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
NEEDS_AV = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="real datasets need PyAV")

TINY = ["--backbone", "test_tiny", "--metrics", "flops", "--methods", "none,random", "--p-ratio", "0.5"]
SPEED = ["--backbone", "test_tiny", "--metrics", "flops,throughput", "--device", "cpu", "--repeats", "2",
         "--warmup", "0", "--methods", "none,random", "--p-ratio", "0.5,1"]
VIZ = ["viz", "--method", "random", "--dataset", "synth-motion", "--p-ratio", "0.5"]
REAL = ["--dataset", "diving48", "--backbone", "test_tiny"]



# name: (argv, fragment of the one stderr line[, marks]). In argv and fragment, {name} is a path in
# the world folder (results, acc, file, garbage, garbage_dir, empty_dir, bad_pth, bad_st, trunc, d48bad,
# lw_bad) and {tmp} a fresh folder of the test for outputs.
CASES: dict[str, dict[str, tuple]] = {
    "cli": {
        "unknown_command": (["frobnicate"], "No such command 'frobnicate'"),
        "unknown_global_option": (["--frob", "ls", "methods"], "No such option '--frob'"),
        "plugin_missing_module": (["--plugin", "nosuchmod_xyz", "ls", "methods"], "no module named 'nosuchmod_xyz'"),
        "plugin_missing_file": (["--plugin", "{tmp}/nope.py", "ls", "methods"], "no such file"),
    },
    "ls": {
        "unknown_what": (["ls", "widgets"], "'widgets' is not one of 'methods', 'backbones', 'datasets'"),
        "missing_what": (["ls"], "Missing argument"),
        "unknown_format": (["ls", "methods", "--format", "xml"], "'xml' is not one of 'table', 'json'"),
    },
    "flops": {
        "unknown_method": (["flops", "--backbone", "test_tiny", "--methods", "rnadom"], "Did you mean 'random'"),
        "unknown_backbone": (["flops", "--backbone", "videomae_x", "--methods", "none"], "unknown backbone 'videomae_x'"),
        "unknown_method_option": (["flops", "--backbone", "test_tiny", "--methods", "random(sed=1)"],
                                  "has no option 'sed'"),
        "methods_empty": (["flops", "--backbone", "test_tiny", "--methods", ","], "empty method name"),
        "backbone_empty": (["flops", "--backbone", ",", "--methods", "none"], "empty --backbone"),
        "p_text": (["flops", "--backbone", "test_tiny", "--p-ratio", "abc"], "not a number"),
        "p_above_one": (["flops", "--backbone", "test_tiny", "--p-ratio", "2"], "outside (0, 1]"),
        "p_negative": (["flops", "--backbone", "test_tiny", "--p-ratio", "-0.5"], "outside (0, 1]"),
        "p_reversed": (["flops", "--backbone", "test_tiny", "--p-ratio", "0.9:0.1"], "greater than stop"),
        "p_step_zero": (["flops", "--backbone", "test_tiny", "--p-ratio", "0.1:0.9:0"], "step must be > 0"),
        "p_too_many_colons": (["flops", "--backbone", "test_tiny", "--p-ratio", "0.1:0.2:0.3:0.4"],
                              "a range is start:stop or start:stop:step"),
        "p_empty_list": (["flops", "--backbone", "test_tiny", "--p-ratio", ","], "malformed --p-ratio ','"),
        "p_nan": (["flops", "--backbone", "test_tiny", "--p-ratio", "nan"], "must be finite"),
        "num_classes_negative": (["flops", "--backbone", "test_tiny", "--num-classes", "-3"], "num_classes must be >= 0"),
        "num_classes_text": (["flops", "--backbone", "test_tiny", "--num-classes", "ten"], "'ten' is not a valid integer"),
        "unknown_format": (["flops", "--format", "xml"], "'xml' is not one of"),
        "checkpoint_missing": (["flops", "--backbone", "test_tiny", "--checkpoint", "{tmp}/nope.pth"],
                               "checkpoint not found"),
        "checkpoint_folder_without_weights": (["flops", "--backbone", "test_tiny", "--checkpoint", "{empty_dir}"],
                                              "has no config.json"),
        "checkpoint_zoo_without_dataset": (["flops", "--backbone", "synth_tiny", "--checkpoint", "zoo"],
                                           "--checkpoint zoo needs --dataset"),  # planned as run plans it
        "checkpoint_random_bytes": (["flops", "--backbone", "test_tiny", "--methods", "none", "--checkpoint", "{bad_pth}"],
                                    "cannot read checkpoint"),
        "checkpoint_truncated": (["flops", "--backbone", "test_tiny", "--methods", "none", "--checkpoint", "{trunc}"],
                                 "cannot read checkpoint"),
        "sta_r_negative": (["flops", "--backbone", "test_tiny", "--methods", "sta(r=-1)"],
                           "sta: r must be a non-negative integer or None, got -1"),
        "sta_r_bool": (["flops", "--backbone", "test_tiny", "--methods", "sta(r=True)"], "sta: r must be a non-negative"),
        "sta_r_too_large": (["flops", "--backbone", "test_tiny", "--methods", "sta(r=16)", "--p-ratio", "0.5"],
                            "sta: r=16 leaves no token in the 16-token temporal groups after block 0; r must be at most 15"),
        "frames_unknown_option": (["flops", "--backbone", "test_tiny", "--methods", "frames(stride=2)"],
                                  "method 'frames' has no option 'stride'; valid options: (none)"),
        "resolution_unknown_option": (["flops", "--backbone", "test_tiny", "--methods", "resolution(size=160)"],
                                      "method 'resolution' has no option 'size'"),
    },
    "run": {
        "unknown_method": (["run", *TINY, "--methods", "rnadom", "--results", "{results}"], "Did you mean 'random'"),
        "unknown_backbone": (["run", *TINY, "--backbone", "videomae_x", "--results", "{results}"],
                             "unknown backbone 'videomae_x'"),
        "unknown_dataset": (["run", "--dataset", "synth-mothon", "--methods", "none", "--results", "{results}"],
                            "Did you mean 'synth-motion'"),
        "unknown_metric": (["run", *TINY, "--metrics", "flop", "--results", "{results}"], "unknown metric"),
        "unknown_split": (["run", "--dataset", "synth-motion", "--methods", "none", "--split", "nosuch",
                           "--results", "{results}"], "has no split 'nosuch'"),
        "unknown_protocol": (["run", *TINY, "--protocol", "xx", "--results", "{results}"], "'xx' is not one of"),
        "protocol_without_accuracy": (["run", *TINY, "--protocol", "lp", "--results", "{results}"],
                                      "--protocol lp trains for accuracy"),
        "accuracy_without_dataset": (["run", *TINY, "--metrics", "accuracy", "--results", "{results}"],
                                     "the accuracy metric needs a dataset"),
        "unknown_method_option": (["run", *TINY, "--methods", "random(sed=1)", "--results", "{results}"],
                                  "has no option 'sed'"),
        "malformed_method_spec": (["run", *TINY, "--methods", "random(", "--results", "{results}"],
                                  "malformed method spec"),
        "sta_r_text": (["run", *TINY, "--methods", "sta(r='48')", "--results", "{results}"],
                       "sta: r must be a non-negative integer or None, got '48'"),
        "methods_empty": (["run", *TINY, "--methods", "", "--results", "{results}"], "empty method name"),
        "methods_trailing_comma": (["run", *TINY, "--methods", "none,", "--results", "{results}"], "empty method name"),
        "backbone_empty": (["run", *TINY, "--backbone", ",", "--results", "{results}"], "nothing to run"),
        "dataset_empty": (["run", "--dataset", ",", "--methods", "none", "--results", "{results}"], "empty --dataset"),
        "metrics_empty": (["run", *TINY, "--metrics", ",", "--results", "{results}"], "empty --metrics"),
        "p_zero": (["run", *TINY, "--p-ratio", "0:0.5", "--results", "{results}"], "outside (0, 1]"),
        "p_above_one": (["run", *TINY, "--p-ratio", "1.5", "--results", "{results}"], "outside (0, 1]"),
        "p_text": (["run", *TINY, "--p-ratio", "abc", "--results", "{results}"], "not a number"),
        "p_empty": (["run", *TINY, "--p-ratio", "", "--results", "{results}"], "empty --p-ratio"),
        "p_empty_item": (["run", *TINY, "--p-ratio", "0.5,,0.7", "--results", "{results}"], "value '' is not a number"),
        "p_reversed": (["run", *TINY, "--p-ratio", "0.9:0.1", "--results", "{results}"], "greater than stop"),
        "p_step_zero": (["run", *TINY, "--p-ratio", "0.1:0.9:0", "--results", "{results}"], "step must be > 0"),
        "p_inf": (["run", *TINY, "--p-ratio", "inf", "--results", "{results}"], "must be finite"),
        "batch_size_zero": (["run", *TINY, "--batch-size", "0", "--results", "{results}"], "--batch-size must be >= 1"),
        "batch_size_negative": (["run", *TINY, "--batch-size", "-2", "--results", "{results}"],
                                "--batch-size must be >= 1"),
        "repeats_zero": (["run", *TINY, "--repeats", "0", "--results", "{results}"], "--repeats must be >= 1"),
        "warmup_negative": (["run", *TINY, "--warmup", "-1", "--results", "{results}"], "--warmup must be >= 0"),
        "limit_zero": (["run", *TINY, "--limit", "0", "--results", "{results}"], "'--limit': 0 is not in the range"),
        "eval_batch_size_zero": (["run", *TINY, "--eval-batch-size", "0", "--results", "{results}"],
                                 "'--eval-batch-size': 0 is not in the range"),
        "workers_negative": (["run", *TINY, "--workers", "-1", "--results", "{results}"],
                             "'--workers': -1 is not in the range"),
        "train_limit_zero": (["run", *TINY, "--train-limit", "0", "--results", "{results}"],
                             "'--train-limit': 0 is not in the range"),
        "num_classes_mismatch": (["run", "--dataset", "synth-motion", "--methods", "none", "--num-classes", "3",
                                  "--results", "{results}"], "--num-classes 3 does not fit synth-motion"),
        "unknown_dtype": (["run", *TINY, "--dtype", "fp8", "--results", "{results}"], "unknown dtype 'fp8'"),
        "unknown_device": (["run", *TINY, "--device", "tpu", "--results", "{results}"], "device 'tpu'"),
        "device_cuda": (["run", *TINY, "--device", "cuda", "--results", "{results}"], "CUDA is not available", NO_CUDA),
        "device_cuda_index": (["run", *TINY, "--device", "cuda:1", "--results", "{results}"], "CUDA is not available",
                              NO_CUDA),
        "checkpoint_missing": (["run", *TINY, "--checkpoint", "{tmp}/nope.pth", "--results", "{results}"],
                               "checkpoint not found"),
        "checkpoint_random_bytes": (["run", *TINY, "--checkpoint", "{bad_pth}", "--results", "{results}"],
                                    "cannot read checkpoint {bad_pth}"),
        "checkpoint_random_safetensors": (["run", *TINY, "--checkpoint", "{bad_st}", "--results", "{results}"],
                                          "cannot read checkpoint {bad_st}"),
        "checkpoint_truncated": (["run", *TINY, "--checkpoint", "{trunc}", "--results", "{results}"],
                                 "cannot read checkpoint {trunc}"),
        "checkpoint_folder_without_weights": (["run", *TINY, "--checkpoint", "{empty_dir}", "--results", "{results}"],
                                              "has no config.json"),
        "checkpoint_zoo_without_dataset": (["run", *TINY, "--checkpoint", "zoo", "--results", "{results}"],
                                           "--checkpoint zoo needs --dataset"),
        "real_dataset_without_root": (["run", *REAL, "--methods", "none", "--results", "{results}"],
                                      "needs its data folder"),
        "data_root_missing": (["run", *REAL, "--methods", "none", "--data-root", "{tmp}/nope", "--results", "{results}"],
                              "no such folder"),
        "data_root_is_a_file": (["run", *REAL, "--methods", "none", "--data-root", "{file}", "--results", "{results}"],
                                "no such folder"),
        "corrupt_video": (["run", *REAL, "--methods", "none", "--metrics", "accuracy", "--data-root", "{d48bad}",
                           "--results", "{results}"], "every video of diving48/test failed to decode", NEEDS_AV),
        "results_is_a_file": (["run", *TINY, "--results", "{file}"], "is a file"),
        "results_under_a_file": (["run", *TINY, "--results", "{file}/sub"], "is a file"),
        "unknown_option": (["run", *TINY, "--badflag", "--results", "{results}"], "No such option '--badflag'"),
    },
    "plot": {
        "results_missing": (["plot", "--results", "{tmp}/nope", "--out", "{tmp}/out"], "results not found"),
        "results_garbage_file": (["plot", "--results", "{garbage}", "--out", "{tmp}/out"], "no readable record"),
        "results_garbage_folder": (["plot", "--results", "{garbage_dir}", "--out", "{tmp}/out"], "no readable record"),
        "out_is_a_file": (["plot", "--results", "{results}", "--out", "{file}"], "{file} is a file, not a folder"),
        "out_under_a_file": (["plot", "--results", "{results}", "--out", "{file}/sub"], "{file} is a file, not a folder"),
        "unknown_method": (["plot", "--results", "{results}", "--methods", "rnadom", "--out", "{tmp}/out"],
                           "no results with method 'rnadom'"),
        "unknown_dataset": (["plot", "--results", "{results}", "--datasets", "synth-mothon", "--out", "{tmp}/out"],
                            "no results with dataset 'synth-mothon'"),
        "unknown_backbone": (["plot", "--results", "{results}", "--backbone", "videomae_x", "--out", "{tmp}/out"],
                             "no results with backbone 'videomae_x'"),
        "unknown_protocol": (["plot", "--results", "{results}", "--protocol", "xx", "--out", "{tmp}/out"],
                             "no results with protocol 'xx'"),
        "methods_empty": (["plot", "--results", "{results}", "--methods", ",", "--out", "{tmp}/out"],
                          "empty method filter"),
    },
    "report": {
        "results_missing": (["report", "--results", "{tmp}/nope", "--out", "{tmp}/out"], "results not found"),
        "results_garbage_file": (["report", "--results", "{garbage}", "--out", "{tmp}/out"], "no readable record"),
        "results_garbage_folder": (["report", "--results", "{garbage_dir}", "--out", "{tmp}/out"], "no readable record"),
        "no_accuracy": (["report", "--results", "{results}", "--out", "{tmp}/out"], "no accuracy records"),
        "out_is_a_file": (["report", "--results", "{acc}", "--out", "{file}", "--no-viz"],
                          "{file} is a file, not a folder"),
        "out_under_a_file": (["report", "--results", "{acc}", "--out", "{file}/sub", "--no-viz"],
                             "{file} is a file, not a folder"),
        "out_under_a_file_with_pictures": (["report", "--results", "{acc}", "--out", "{file}/sub"],
                                           "{file} is a file, not a folder"),
        "unknown_method": (["report", "--results", "{acc}", "--methods", "rnadom", "--out", "{tmp}/out"],
                           "no results with method 'rnadom'"),
        "datasets_empty": (["report", "--results", "{acc}", "--datasets", ",", "--out", "{tmp}/out"],
                           "empty dataset filter"),
        "viz_p_ratio_zero": (["report", "--results", "{acc}", "--viz-p-ratio", "0", "--out", "{tmp}/out"],
                             "'--viz-p-ratio': 0.0 is not in the range"),
        "viz_p_ratio_above_one": (["report", "--results", "{acc}", "--viz-p-ratio", "1.5", "--out", "{tmp}/out"],
                                  "'--viz-p-ratio': 1.5 is not in the range"),
        "unknown_viz_dataset": (["report", "--results", "{acc}", "--viz-dataset", "synth-mothon", "--out", "{tmp}/out"],
                                "Did you mean 'synth-motion'"),
    },
    "check": {
        "baseline_missing": (["check", "--baseline", "{tmp}/nope", "--results", "{results}"], "no such folder"),
        "results_missing": (["check", "--baseline", "{results}", "--results", "{tmp}/nope"], "no records under --results"),
        "results_garbage_file": (["check", "--baseline", "{results}", "--results", "{garbage}"], "no readable record"),
        "baseline_garbage_folder": (["check", "--baseline", "{garbage_dir}", "--results", "{results}"],
                                    "no readable record"),
        "baseline_is_a_file": (["check", "--baseline", "{file}", "--results", "{results}"], "no readable record"),
        "accuracy_tol_negative": (["check", "--baseline", "{results}", "--results", "{results}", "--accuracy-tol", "-1"],
                                  "'--accuracy-tol': -1.0 is not in the range"),
        "speed_band_above_one": (["check", "--baseline", "{results}", "--results", "{results}", "--speed-band", "2"],
                                 "'--speed-band': 2.0 is not in the range"),
        "out_under_a_file": (["check", "--baseline", "{results}", "--results", "{results}", "--out", "{file}/r.md"],
                             "{file} is a file, not a folder"),
        "out_is_a_folder": (["check", "--baseline", "{results}", "--results", "{results}", "--out", "{empty_dir}"],
                            "is a folder"),
        "update_baseline_is_a_file": (["check", "--baseline", "{file}", "--results", "{results}", "--update"],
                                      "{file} is a file, not a folder"),
        "update_baseline_under_a_file": (["check", "--baseline", "{file}/base", "--results", "{results}", "--update"],
                                         "{file} is a file, not a folder"),
    },
    "viz": {
        "unknown_method": ([*VIZ, "--method", "rnadom", "--out", "{tmp}/v.png"], "Did you mean 'random'"),
        "unknown_dataset": ([*VIZ, "--dataset", "synth-mothon", "--out", "{tmp}/v.png"], "Did you mean 'synth-motion'"),
        "unknown_backbone": ([*VIZ, "--backbone", "videomae_x", "--out", "{tmp}/v.png"], "unknown backbone 'videomae_x'"),
        "unknown_split": ([*VIZ, "--split", "nosuch", "--out", "{tmp}/v.png"], "has no split 'nosuch'"),
        "method_empty": ([*VIZ, "--method", "", "--out", "{tmp}/v.png"], "malformed method spec"),
        "two_methods": ([*VIZ, "--method", "none,random", "--out", "{tmp}/v.png"], "malformed method spec"),
        "p_range": ([*VIZ, "--p-ratio", "0.1:0.5", "--out", "{tmp}/v.png"], "viz draws one P-Ratio"),
        "p_text": ([*VIZ, "--p-ratio", "abc", "--out", "{tmp}/v.png"], "not a number"),
        "p_zero": ([*VIZ, "--p-ratio", "0", "--out", "{tmp}/v.png"], "outside (0, 1]"),
        "p_empty": ([*VIZ, "--p-ratio", "", "--out", "{tmp}/v.png"], "empty --p-ratio"),
        "clip_negative": ([*VIZ, "--clip", "-1", "--out", "{tmp}/v.png"], "'--clip': -1 is not in the range"),
        "clip_out_of_range": ([*VIZ, "--clip", "100000", "--out", "{tmp}/v.png"], "--clip 100000 is out of range"),
        "checkpoint_missing": ([*VIZ, "--checkpoint", "{tmp}/nope.pth", "--out", "{tmp}/v.png"], "checkpoint not found"),
        "checkpoint_random_bytes": ([*VIZ, "--checkpoint", "{bad_pth}", "--out", "{tmp}/v.png"],
                                    "cannot read checkpoint"),
        "checkpoint_truncated": ([*VIZ, "--checkpoint", "{trunc}", "--out", "{tmp}/v.png"], "cannot read checkpoint"),
        "real_dataset_without_root": (["viz", "--method", "random", *REAL, "--p-ratio", "0.5", "--out", "{tmp}/v.png"],
                                      "needs its data folder"),
        "data_root_missing": (["viz", "--method", "random", *REAL, "--p-ratio", "0.5", "--data-root", "{tmp}/nope",
                               "--out", "{tmp}/v.png"], "does not exist"),
        "corrupt_video": (["viz", "--method", "random", *REAL, "--p-ratio", "0.5", "--data-root", "{d48bad}",
                           "--out", "{tmp}/v.png"], "every video of diving48/test failed to decode", NEEDS_AV),
        "out_is_a_folder": ([*VIZ, "--out", "{empty_dir}"], "is a folder: give a file path"),
        "out_under_a_file": ([*VIZ, "--out", "{file}/v.png"], "{file} is a file, not a folder"),
        "no_device_option": ([*VIZ, "--device", "cuda", "--out", "{tmp}/v.png"], "No such option '--device'"),
    },
    "preview": {
        "unknown_dataset": (["preview", "--dataset", "synth-mothon", "--out", "{tmp}/p.png"], "Did you mean 'synth-motion'"),
        "unknown_split": (["preview", "--dataset", "synth-motion", "--split", "nosuch", "--out", "{tmp}/p.png"],
                          "has no split 'nosuch'"),
        "clips_zero": (["preview", "--dataset", "synth-motion", "--clips", "0", "--out", "{tmp}/p.png"],
                       "'--clips': 0 is not in the range"),
        "clips_too_many": (["preview", "--dataset", "synth-motion", "--clips", "33", "--out", "{tmp}/p.png"],
                           "'--clips': 33 is not in the range"),
        "real_dataset_without_root": (["preview", "--dataset", "diving48", "--out", "{tmp}/p.png"], "needs its data folder"),
        "data_root_missing": (["preview", "--dataset", "diving48", "--data-root", "{tmp}/nope", "--out", "{tmp}/p.png"],
                              "does not exist"),
        "data_root_is_a_file": (["preview", "--dataset", "diving48", "--data-root", "{file}", "--out", "{tmp}/p.png"],
                                "does not exist"),
        "corrupt_video": (["preview", "--dataset", "diving48", "--data-root", "{d48bad}", "--out", "{tmp}/p.png"],
                          "every video of diving48/test failed to decode", NEEDS_AV),
        "out_is_a_folder": (["preview", "--dataset", "synth-motion", "--out", "{empty_dir}"], "is a folder: give a file path"),
        "out_under_a_file": (["preview", "--dataset", "synth-motion", "--out", "{file}/p.png"],
                             "{file} is a file, not a folder"),
        "missing_out": (["preview", "--dataset", "synth-motion"], "Missing option '--out'"),
    },
    "train backbone": {
        "unknown_dataset": (["train", "backbone", "--dataset", "synth-mothon", "--out", "{tmp}/m.safetensors"],
                            "Did you mean 'synth-motion'"),
        "dataset_empty": (["train", "backbone", "--dataset", "", "--out", "{tmp}/m.safetensors"], "unknown dataset ''"),
        "real_dataset": (["train", "backbone", "--dataset", "diving48", "--out", "{tmp}/m.safetensors"],
                         "'diving48' is a real dataset"),
        "unknown_backbone": (["train", "backbone", "--dataset", "synth-motion", "--backbone", "videomae_x",
                              "--out", "{tmp}/m.safetensors"], "unknown backbone 'videomae_x'"),
        "epochs_zero": (["train", "backbone", "--dataset", "synth-motion", "--epochs", "0"], "'--epochs': 0 is not in"),
        "batch_size_zero": (["train", "backbone", "--dataset", "synth-motion", "--batch-size", "0"],
                            "'--batch-size': 0 is not in"),
        "batch_size_negative": (["train", "backbone", "--dataset", "synth-motion", "--batch-size", "-4"],
                                "'--batch-size': -4 is not in"),
        "train_clips_zero": (["train", "backbone", "--dataset", "synth-motion", "--train-clips", "0"],
                             "'--train-clips': 0 is not in"),
        "lr_zero": (["train", "backbone", "--dataset", "synth-motion", "--lr", "0"], "'--lr': 0.0 is not in"),
        "token_drop_above_one": (["train", "backbone", "--dataset", "synth-motion", "--token-drop", "1.5"],
                                 "'--token-drop': 1.5 is not in"),
        "unknown_dtype": (["train", "backbone", "--dataset", "synth-motion", "--dtype", "bf16"], "'bf16' is not one of"),
        "unknown_device": (["train", "backbone", "--dataset", "synth-motion", "--device", "tpu",
                            "--out", "{tmp}/m.safetensors"], "unknown device 'tpu'"),
        "device_cuda": (["train", "backbone", "--dataset", "synth-motion", "--device", "cuda",
                         "--out", "{tmp}/m.safetensors"], "CUDA is not available", NO_CUDA),
        "out_is_a_folder": (["train", "backbone", "--dataset", "synth-motion", "--out", "{empty_dir}"],
                            "is a folder: give a file path"),
        "out_under_a_file": (["train", "backbone", "--dataset", "synth-motion", "--out", "{file}/m.safetensors"],
                             "{file} is a file, not a folder"),
        "missing_dataset": (["train", "backbone"], "Missing option '--dataset'"),
    },
    **{f"train {kind}": {
        "unknown_dataset": (["train", kind, "--dataset", "synth-mothon", "--out", "{tmp}/m.safetensors"],
                            "no zoo backbone for 'synth-mothon'"),
        "real_dataset": (["train", kind, "--dataset", "diving48", "--out", "{tmp}/m.safetensors"],
                         "no zoo backbone for 'diving48'"),
        "epochs_zero": (["train", kind, "--dataset", "synth-motion", "--epochs", "0"], "'--epochs': 0 is not in"),
        "lr_negative": (["train", kind, "--dataset", "synth-motion", "--lr", "-1"], "'--lr': -1.0 is not in"),
        "out_is_a_folder": (["train", kind, "--dataset", "synth-motion", "--out", "{empty_dir}"],
                            "is a folder: give a file path"),
        "out_under_a_file": (["train", kind, "--dataset", "synth-motion", "--out", "{file}/m.safetensors"],
                             "{file} is a file, not a folder"),
    } for kind in ("lite", "lite++", "image-teacher")},
    "train lookwhen": {
        "unknown_dataset": (["train", "lookwhen", "--dataset", "synth-mothon", "--out-dir", "{tmp}/lw"],
                            "no zoo backbone for 'synth-mothon'"),
        "uniqueness_k_zero": (["train", "lookwhen", "--dataset", "synth-motion", "--uniqueness-k", "0"],
                              "'--uniqueness-k': 0 is not in"),
        "unknown_stage": (["train", "lookwhen", "--dataset", "synth-motion", "--stage", "both2"], "'both2' is not one of"),
        "selector_epochs_zero": (["train", "lookwhen", "--dataset", "synth-motion", "--selector-epochs", "0"],
                                 "'--selector-epochs': 0 is not in"),
        "extractor_epochs_zero": (["train", "lookwhen", "--dataset", "synth-motion", "--extractor-epochs", "0"],
                                  "'--extractor-epochs': 0 is not in"),
        "image_teacher_missing": (["train", "lookwhen", "--dataset", "synth-motion", "--image-teacher",
                                   "{tmp}/nope.safetensors", "--out-dir", "{tmp}/lw"], "cannot read image teacher"),
        "image_teacher_random_bytes": (["train", "lookwhen", "--dataset", "synth-motion", "--image-teacher", "{bad_st}",
                                        "--out-dir", "{tmp}/lw"], "cannot read image teacher"),
        "image_teacher_truncated": (["train", "lookwhen", "--dataset", "synth-motion", "--image-teacher", "{trunc}",
                                     "--out-dir", "{tmp}/lw"], "cannot read image teacher"),
        "image_teacher_malformed_timm": (["train", "lookwhen", "--dataset", "synth-motion", "--image-teacher", "timm:vit",
                                          "--out-dir", "{tmp}/lw"], "write timm:<model name>:<weights file>"),
        "extractor_without_selector": (["train", "lookwhen", "--dataset", "synth-motion", "--stage", "extractor",
                                        "--out-dir", "{empty_dir}"], "run the selector stage first"),
        "extractor_with_corrupt_selector": (["train", "lookwhen", "--dataset", "synth-motion", "--stage", "extractor",
                                             "--out-dir", "{lw_bad}"], "cannot read LookWhen selector"),
        "out_dir_is_a_file": (["train", "lookwhen", "--dataset", "synth-motion", "--out-dir", "{file}"],
                              "{file} is a file, not a folder"),
        "out_dir_under_a_file": (["train", "lookwhen", "--dataset", "synth-motion", "--out-dir", "{file}/lw"],
                                 "{file} is a file, not a folder"),
    },
}

BIG = "99999999999999999999999"  # past any 64-bit integer

# Numbers at the extremes, wrong types, special files, broken plug-ins and thin results: each
# refused where it enters (spec parsing, planning, annotations, config.json, the checkpoint
# path, plug-in import, the report), before anything runs. More placeholders: fifo and
# zero_link (a FIFO, a symlink to /dev/zero), hf_* (checkpoint folders whose config.json has
# a wrong-typed field), d48inf/d48frac/k400inf (annotations with Infinity, 1.7, inf),
# d48mix (a good and an undecodable video), plug_exit/plug_needy (plug-ins),
# acc_unreachable/acc_error (accuracy results holding only such cells).

# hf_<name>: a checkpoint folder whose config.json has this one field wrong, and the error's fragment.
HF_FIELDS = {
    "hidden_zero": ('"hidden_size": 0', "hidden_size must be an integer in 1..1048576, got 0"),
    "hidden_text": ('"hidden_size": "768"', 'hidden_size must be an integer in 1..1048576, got "768"'),
    "image_big": ('"image_size": "big"', 'image_size must be an integer in 1..1048576 (or a square [n, n]), got "big"'),
    "labels_ten": ('"num_labels": "ten"', 'num_labels must be an integer in 0..1048576, got "ten"'),
    "eps_negative": ('"layer_norm_eps": -1', "layer_norm_eps must be a finite number > 0, got -1"),
    "frames_bool": ('"num_frames": true', "num_frames must be an integer in 1..1048576, got true"),
}
EDGE_CASES: dict[str, dict[str, tuple]] = {
    "cli": {
        "plugin_sys_exit": (["--plugin", "{plug_exit}", "ls", "methods"], "called sys.exit(3) while being imported"),
        "plugin_option_without_default": (["--plugin", "{plug_needy}", "ls", "methods"],
                                          "option 'k' has no default"),
    },
    "flops": {
        "method_layer_past_depth": (["flops", "--backbone", "test_tiny", "--methods", "attention(layer=99)"],
                                    "layer 99 does not exist in a 2-block backbone"),
        "p_step_tiny": (["flops", "--backbone", "test_tiny", "--p-ratio", "0.1:0.9:1e-9"],
                        "gives 800000001 points; at most 1000"),
        "duplicate_option": (["flops", "--backbone", "test_tiny", "--methods", "random(seed=1, seed=2)"],
                             "gives option 'seed' more than once"),
        **{f"config_{name}": (["flops", "--backbone", "test_tiny", "--methods", "none", "--checkpoint", f"{{hf_{name}}}"],
                              fragment) for name, (_, fragment) in HF_FIELDS.items()},
        "num_classes_huge": (["flops", "--backbone", "test_tiny", "--num-classes", BIG],
                             "num_classes must be at most 1048576"),
        "checkpoint_fifo": (["flops", "--backbone", "test_tiny", "--methods", "none", "--checkpoint", "{fifo}"],
                            "cannot read checkpoint {fifo}: not a regular file"),
        "checkpoint_dev_zero": (["flops", "--backbone", "test_tiny", "--methods", "none", "--checkpoint", "/dev/zero"],
                                "cannot read checkpoint /dev/zero: not a regular file"),
        "checkpoint_link_to_dev_zero": (["flops", "--backbone", "test_tiny", "--methods", "none",
                                         "--checkpoint", "{zero_link}"], "not a regular file"),
    },
    "run": {
        "method_layer_past_depth": (["run", *TINY, "--methods", "attention(layer=99)", "--results", "{results}"],
                                    "layer 99 does not exist in a 2-block backbone; give layer in 0..1"),
        "oracle_block_past_depth": (["run", *TINY, "--methods", "oracle(block=7)", "--results", "{results}"],
                                    "block 7 does not exist in a 2-block backbone"),
        "tome_r_huge": (["run", *TINY, "--methods", f"tome(r={BIG})", "--results", "{results}"],
                        "is more than the backbone's 32 patch tokens"),
        "vid_tldr_r_huge": (["run", *TINY, "--methods", f"vid_tldr(r_list=[{BIG}])", "--results", "{results}"],
                            "is more than the backbone's 32 patch tokens"),
        "random_seed_huge": (["run", *TINY, "--methods", f"random(seed={BIG})", "--results", "{results}"],
                             "random: seed must be a non-negative integer below 2**63"),
        "seed_huge": (["run", *TINY, "--seed", BIG, "--results", "{results}"], f"'--seed': {BIG} is not in the range"),
        "seed_negative": (["run", *TINY, "--seed", "-1", "--results", "{results}"], "'--seed': -1 is not in the range"),
        "num_classes_huge": (["run", *TINY, "--num-classes", "999999999999", "--results", "{results}"],
                             "num_classes must be at most 1048576"),  # was an oom record
        "rlt_tau_infinite": (["run", *TINY, "--methods", "rlt(tau=1e999)", "--results", "{results}"],
                             "rlt: tau must be a finite number or None, got inf"),
        "duplicate_option": (["run", *TINY, "--methods", "random(seed=1, seed=2)", "--results", "{results}"],
                             "method spec 'random(seed=1, seed=2)' gives option 'seed' more than once"),
        "p_step_tiny": (["run", *TINY, "--p-ratio", "0.1:0.9:1e-9", "--results", "{results}"],
                        "gives 800000001 points; at most 1000 are allowed"),
        "p_step_beyond_decimal": (["run", *TINY, "--p-ratio", "0.1:0.9:1e-99999999999", "--results", "{results}"],
                                  "gives over a billion points"),
        "p_list_too_long": (["run", *TINY, "--p-ratio", ",".join(["0.5"] * 1001), "--results", "{results}"],
                            "gives 1001 points"),
        "checkpoint_fifo": (["run", *TINY, "--checkpoint", "{fifo}", "--results", "{results}"],
                            "cannot read checkpoint {fifo}: not a regular file (a FIFO, device or socket)"),
        "checkpoint_dev_zero": (["run", *TINY, "--checkpoint", "/dev/zero", "--results", "{results}"],
                                "not a regular file"),
        "config_hidden_text": (["run", *TINY, "--checkpoint", "{hf_hidden_text}", "--results", "{results}"],
                               'hidden_size must be an integer in 1..1048576, got "768"'),
        "diving48_start_infinity": (["run", *REAL, "--methods", "none", "--data-root", "{d48inf}", "--results",
                                     "{results}"], "has start_frame inf: expected a whole number in 0..2147483647"),
        "diving48_fractional_label": (["run", *REAL, "--methods", "none", "--data-root", "{d48frac}", "--results",
                                       "{results}"], "has label 1.7: expected a whole number in 0..1"),
        "kinetics400_time_inf": (["run", "--dataset", "kinetics400", "--backbone", "test_tiny", "--methods", "none",
                                  "--data-root", "{k400inf}", "--results", "{results}"], "has time_start 'inf'"),
    },
    "train backbone": {
        "seed_huge": (["train", "backbone", "--dataset", "synth-motion", "--seed", BIG, "--out", "{tmp}/m.safetensors"],
                      "'--seed': 99999999999999999999999 is not in the range"),
    },
    "report": {
        "only_unreachable": (["report", "--results", "{acc_unreachable}", "--out", "{tmp}/out"],
                             "nothing to report: no cell with status ok, accuracy and GFLOPs among the 2 accuracy "
                             "cells (2 unreachable)"),
        "only_error": (["report", "--results", "{acc_error}", "--out", "{tmp}/out", "--no-viz"],
                       "(2 error) (re-run the failed ones with 'tokbench run --retry-failed')"),
    },
    "viz": {
        "undecodable_clip": (["viz", "--method", "random", *REAL, "--p-ratio", "0.5", "--data-root", "{d48mix}",
                              "--clip", "1", "--out", "{tmp}/v.png"],
                             "clip 1 (bad) of diving48/test could not be read: ", NEEDS_AV),
    },
}
PARAMS = [
    pytest.param(argv, fragment, id=f"{command.replace(' ', '_')}-{name}", marks=list(marks))
    for table in (CASES, EDGE_CASES)
    for command, cases in table.items()
    for name, (argv, fragment, *marks) in cases.items()
]
assert len({p.id for p in PARAMS}) == len(PARAMS), "two cases share an id"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (folders as None) with its bytes."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_input_cache")


@pytest.fixture
def cache(shared_cache, monkeypatch):
    """One FLOPs and clip cache for the whole module (conftest gives each test a fresh one,
    which would regenerate the synthetic clips for every case)."""
    monkeypatch.setenv("TOKBENCH_CACHE", str(shared_cache))


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_cache):
    """The inputs every case may read; none may change."""
    root = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKBENCH_CACHE", str(shared_cache))
        r = invoke("run", *SPEED, "--results", root / "results")
        assert r.exit_code == 0, r.stderr
        r = invoke("run", "--dataset", "synth-motion", "--methods", "none,random", "--p-ratio", "0.5", "--limit", "2",
                   "--metrics", "accuracy,flops", "--results", root / "acc")
        assert r.exit_code == 0, r.stderr
    rng = random.Random(0)
    (root / "file").write_text("a plain file where a folder is expected\n")
    (root / "garbage.jsonl").write_bytes(rng.randbytes(400).replace(b"\n", b" "))
    (root / "garbage_dir").mkdir()
    (root / "garbage_dir" / "baseline.jsonl").write_bytes(b"not json\n" + rng.randbytes(200).replace(b"\n", b" "))
    (root / "empty_dir").mkdir()
    (root / "bad.pth").write_bytes(rng.randbytes(512))
    (root / "bad.safetensors").write_bytes(rng.randbytes(512))
    from safetensors.torch import save_file

    from tokbench.backbones import create_backbone

    save_file({k: v.contiguous() for k, v in create_backbone("test_tiny").state_dict().items()}, root / "tiny.safetensors")
    whole = (root / "tiny.safetensors").read_bytes()
    (root / "trunc.safetensors").write_bytes(whole[: len(whole) // 2])
    (root / "tiny.safetensors").unlink()
    # Diving48's layout (tests/test_real_datasets.py) whose only video is random bytes.
    d48 = root / "d48bad"
    (d48 / "rgb").mkdir(parents=True)
    (d48 / "Diving48_vocab.json").write_text('[["a"], ["b"]]')
    for split, label in (("train", 0), ("test", 1)):
        (d48 / f"Diving48_V2_{split}.json").write_text(
            f'[{{"vid_name": "bad", "label": {label}, "start_frame": 0, "end_frame": 20}}]')
    (d48 / "rgb" / "bad.mp4").write_bytes(rng.randbytes(4000))
    (root / "lw_bad").mkdir()
    (root / "lw_bad" / "synth-motion.selector.safetensors").write_bytes(rng.randbytes(300))
    edge = _edge_inputs(root)
    paths = {name: root / name for name in ("results", "acc", "file", "garbage_dir", "empty_dir", "d48bad", "lw_bad")}
    paths.update(edge)
    paths.update(garbage=root / "garbage.jsonl", bad_pth=root / "bad.pth", bad_st=root / "bad.safetensors",
                 trunc=root / "trunc.safetensors")
    assert len(list((root / "results").rglob("*.jsonl"))) == 1 and len(list((root / "acc").rglob("*.jsonl"))) == 1
    return root, {k: str(v) for k, v in paths.items()}


def _edge_inputs(root: Path) -> dict[str, Path]:
    """The inputs of EDGE_CASES, made in ``root`` (after ``acc``, whose records they reuse)."""
    import json
    import os

    made = {}
    os.mkfifo(root / "fifo.pth")
    (root / "zero.pth").symlink_to("/dev/zero")
    made.update(fifo=root / "fifo.pth", zero_link=root / "zero.pth")
    for name, (field, _) in HF_FIELDS.items():
        folder = root / f"hf_{name}"
        folder.mkdir()
        (folder / "config.json").write_text(f'{{"model_type": "videomae", {field}}}')
        made[f"hf_{name}"] = folder
    d48 = {"d48inf": '{"vid_name": "v", "label": 0, "start_frame": Infinity, "end_frame": 20}',
           "d48frac": '{"vid_name": "v", "label": 1.7, "start_frame": 0, "end_frame": 20}'}
    for name, entry in d48.items():
        (root / name).mkdir()
        (root / name / "Diving48_vocab.json").write_text('[["a"], ["b"]]')
        for split in ("train", "test"):
            (root / name / f"Diving48_V2_{split}.json").write_text(f"[{entry}]")
        made[name] = root / name
    k400 = root / "k400inf"
    k400.mkdir()
    (k400 / "train.csv").write_text("label,youtube_id,time_start,time_end,split\nbowling,aaa,0,10,train\n")
    (k400 / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nbowling,bbb,inf,10,val\n")
    made["k400inf"] = k400
    if importlib.util.find_spec("av") is not None:  # a Diving48 folder whose clip 0 decodes and clip 1 does not
        from fakedata import COL, write_video

        mix = root / "d48mix"
        (mix / "rgb").mkdir(parents=True)
        (mix / "Diving48_vocab.json").write_text('[["a"], ["b"]]')
        for split in ("train", "test"):
            (mix / f"Diving48_V2_{split}.json").write_text(
                '[{"vid_name": "good", "label": 0}, {"vid_name": "bad", "label": 1}]')
        write_video(mix / "rgb" / "good.mp4", COL["a"])
        (mix / "rgb" / "bad.mp4").write_bytes(random.Random(1).randbytes(4000))
        made["d48mix"] = mix
    (root / "plug_exit.py").write_text("import sys\nsys.exit(3)\n")
    (root / "plug_needy.py").write_text(
        "from tokbench.methods import Method, register_method\n\n\n"
        "@register_method('needy_issue15')\nclass Needy(Method):\n"
        "    def __init__(self, *, p_ratio: float = 1.0, k: int) -> None:\n"
        "        super().__init__(p_ratio=p_ratio)\n        self.k = k\n")
    made.update(plug_exit=root / "plug_exit.py", plug_needy=root / "plug_needy.py")
    # Accuracy results whose every cell is unreachable or failed: no metric fields, as the runner writes them.
    records = [json.loads(line) for f in sorted((root / "acc").rglob("*.jsonl")) for line in f.read_text().splitlines()]
    measured = ("gflops", "gflops_std", "flop_counter", "params_m", "tokens_per_block", "tokens_kept", "flops_by_operator",
                "top1", "top5", "clips", "views", "view_averaging", "skipped_videos", "method_state")
    for status in ("unreachable", "error"):
        folder = root / f"acc_{status}"
        folder.mkdir()
        thin = [{**{k: v for k, v in r.items() if k not in measured}, "status": status, "error": "it failed"}
                for r in records]
        (folder / "baseline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in thin))
        made[f"acc_{status}"] = folder
    return made


@pytest.mark.parametrize(("argv", "fragment"), PARAMS)
def test_bad_input_is_one_line_and_touches_nothing(argv, fragment, world, cache, tmp_path, monkeypatch):
    root, paths = world
    monkeypatch.chdir(tmp_path)  # commands with default output paths write nowhere near the repository
    out = tmp_path / "out_here"
    out.mkdir()
    names = {**paths, "tmp": str(out)}
    argv = [a.format(**names) for a in argv]
    fragment = fragment.format(**names)
    before = snapshot(root)
    r = invoke(*argv)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert r.stderr.startswith("tokbench: error: "), r.stderr
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
    assert fragment in r.stderr, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stdout == "", r.stdout
    assert snapshot(root) == before


def test_a_check_regression_is_exit_1_not_an_error(world, cache):
    """Missing cells against a baseline are a regression (exit 1, the table on stdout), not bad input."""
    root, paths = world
    before = snapshot(root)
    r = invoke("check", "--baseline", paths["acc"], "--results", paths["results"], "--no-speed")
    assert r.exit_code == 1, (r.stdout, r.stderr, r.exception)
    assert "regression" in r.stdout and "tokbench: error" not in r.stderr
    assert snapshot(root) == before


# --------------------------------------------------------------------------- recoveries
# Damaged caches, RLT's forced first slice, a --limit past the split, a BOM: not errors,
# the documented recovery.


def _records(results: Path) -> list[dict]:
    from tokbench.store import load_records

    return [r for f in sorted(results.rglob("*.jsonl")) for r in load_records(f)]


@pytest.mark.parametrize("damage", ["[]", "null", "missing_field", "extra_field", "string_gflops", "entry_null"])
def test_a_damaged_flops_cache_is_counted_again_never_trusted(damage, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    argv = ["flops", "--backbone", "test_tiny", "--methods", "none,random", "--p-ratio", "0.5", "--format", "json"]
    clean = invoke(*argv)
    assert clean.exit_code == 0, clean.stderr
    cache = tmp_path / "cache" / "flops.json"
    good = json.loads(cache.read_text())
    assert len(good) == 2
    key, entry = sorted(good.items())[0]
    damaged = {
        "[]": [], "null": None,
        "missing_field": {key: {k: v for k, v in entry.items() if k != "gflops"}},
        "extra_field": {key: {**entry, "note": "hand-edited"}},
        "string_gflops": {key: {**entry, "gflops": str(entry["gflops"])}},
        "entry_null": {key: None},
    }[damage]
    cache.write_text(json.dumps(damaged))
    again = invoke(*argv)
    assert again.exit_code == 0 and again.stderr == "", again.stderr
    assert again.stdout == clean.stdout  # counted again: the same numbers
    assert json.loads(cache.read_text())[key] == entry  # and the entry rewritten
    # A sweep measures every cell (before: every cell stored as error, which the re-run skipped).
    cache.write_text(json.dumps(damaged))
    r = invoke("run", *TINY, "--results", tmp_path / "res")
    assert r.exit_code == 0, r.stderr
    assert [x["status"] for x in _records(tmp_path / "res")] == ["ok", "ok"]
    assert not list(cache.parent.glob("*.tmp"))  # written by temporary file and rename, none left


def test_rlt_keeps_the_first_slice_whatever_tau(tmp_path, cache):
    """tau=1e300 is +inf in float32, where the forced first slice's +inf score is not above
    it: RLT kept no token at all and stored ok. The first slice (16 of test_tiny's 32) stays."""
    r = invoke("run", "--backbone", "test_tiny", "--metrics", "flops", "--methods", "rlt(tau=1e300),rlt(tau=1e30)",
               "--p-ratio", "1", "--results", tmp_path / "res")
    assert r.exit_code == 0, r.stderr
    records = _records(tmp_path / "res")
    assert [(x["status"], x["tokens_kept"]) for x in records] == [("ok", 16.0), ("ok", 16.0)]


def test_limit_past_a_synthetic_split_evaluates_the_split(tmp_path, cache, monkeypatch):
    """--limit 5 on a 3-clip split (the 500-clip split, shrunk to stay fast) evaluates its 3
    clips, as on real datasets, instead of generating 2 clips that are not in it."""
    from tokbench.data import synthetic

    monkeypatch.setitem(synthetic.DEFAULT_CLIPS, "val", 3)
    r = invoke("run", "--dataset", "synth-motion", "--methods", "none", "--metrics", "accuracy", "--limit", "5",
               "--results", tmp_path / "res")
    assert r.exit_code == 0, r.stderr
    (record,) = _records(tmp_path / "res")
    assert record["status"] == "ok" and record["clips"] == 3


def test_seed_out_of_range_is_refused_while_planning():
    from tokbench.benchmark.runner import Sweep, plan
    from tokbench.errors import TokbenchError

    for seed in (2**63, -1):
        with pytest.raises(TokbenchError, match=r"--seed must be a non-negative integer below 2\*\*63"):
            plan(Sweep(backbones=("test_tiny",), methods=("none",), p_ratios=(1.0,), seed=seed))


def test_a_damaged_synthetic_clip_cache_is_generated_again(tmp_path, monkeypatch):
    import numpy as np

    from tokbench.cache import default_cache_dir
    from tokbench.data.synthetic import SyntheticDataset

    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path))
    first = np.array(SyntheticDataset("synth-motion", "val", num_clips=3).videos)
    (cached,) = (default_cache_dir() / "data").glob("synth-motion-val-*/videos.npy")
    np.save(cached, first[:2])  # loads fine, but two clips short
    again = SyntheticDataset("synth-motion", "val", num_clips=3)
    assert np.array_equal(np.array(again.videos), first) and np.load(cached).shape == first.shape


@pytest.mark.parametrize("dataset", ["kinetics400", "jester"])
def test_annotations_with_a_byte_order_mark_read_like_without(dataset, tmp_path):
    """Excel and Notepad start CSVs with a BOM; Kinetics-400 then had no 'youtube_id' column
    and Jester's first class name began with U+FEFF."""
    from tokbench.data import create_dataset

    files, video = {
        "kinetics400": ({"train.csv": "label,youtube_id,time_start,time_end,split\nbowling,aaa,0,10,train\n",
                         "validate.csv": "label,youtube_id,time_start,time_end,split\nbowling,bbb,3,13,val\n"},
                        "val/bbb_000003_000013.mp4"),
        "jester": ({"jester-v1-labels.csv": "Swiping Left\nSwiping Right\n",
                    "jester-v1-validation.csv": "7;Swiping Left\n"}, "20bn-jester-v1/7/"),
    }[dataset]
    read = []
    for bom in ("", "\ufeff"):
        root = tmp_path / f"bom{len(bom)}"
        for name, text in files.items():
            root.mkdir(exist_ok=True)
            (root / name).write_text(bom + text, encoding="utf-8")
        where = root / video  # the clip only has to exist: nothing is decoded here
        where.parent.mkdir(parents=True, exist_ok=True)
        where.mkdir() if video.endswith("/") else where.touch()
        ds = create_dataset(dataset, split="val", root=root)
        read.append((list(ds.classes), [(x.id, x.label) for x in ds.samples]))
    assert read[1] == read[0] and read[0][1] and "\ufeff" not in str(read[1])

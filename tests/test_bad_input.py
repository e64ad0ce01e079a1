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
                                           "checkpoint 'zoo' stands for the shipped backbone"),
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

PARAMS = [
    pytest.param(argv, fragment, id=f"{command.replace(' ', '_')}-{name}", marks=list(marks))
    for command, cases in CASES.items()
    for name, (argv, fragment, *marks) in cases.items()
]


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
    paths = {name: root / name for name in ("results", "acc", "file", "garbage_dir", "empty_dir", "d48bad", "lw_bad")}
    paths.update(garbage=root / "garbage.jsonl", bad_pth=root / "bad.pth", bad_st=root / "bad.safetensors",
                 trunc=root / "trunc.safetensors")
    assert len(list((root / "results").rglob("*.jsonl"))) == 1 and len(list((root / "acc").rglob("*.jsonl"))) == 1
    return root, {k: str(v) for k, v in paths.items()}


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

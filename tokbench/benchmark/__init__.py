"""Measurement: FLOPs, throughput, environment, sweep specs and the runner."""

"""Reports and plots: pure functions of the results DataFrame. Never imports torch."""

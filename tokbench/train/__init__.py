"""Training: one loop and one checkpoint format shared by every trainer (zoo backbones,
linear probes, fine-tuning, and later method selectors)."""

"""deg as an ANN-Benchmarks algorithm (copy this folder to ann_benchmarks/algorithms/deg/)."""

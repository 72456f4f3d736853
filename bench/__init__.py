"""deg's benchmark harness: deg against faiss HNSW, hnswlib, deglib and pynndescent."""

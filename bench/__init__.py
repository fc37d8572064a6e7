"""fluxwatch's benchmarks against the embedded cluster; run them with ``python -m bench``."""

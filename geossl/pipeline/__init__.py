"""Regional runs: a pipeline of steps over one manifest, idempotent, resumable and reported."""

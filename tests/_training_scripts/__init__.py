"""Small training programs that the training tests run in subprocesses (crash/resume, multi-worker)."""

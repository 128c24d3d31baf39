"""What a job leaves for people: run-result tables (Iceberg), the timing chart, history, the history report and
the regressions of a run."""

"""What a job leaves for people: run-result tables (Iceberg), the timing chart, history."""

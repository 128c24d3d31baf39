"""Running a release: bootstrap (resolve, fetch, enter), the Prefect flow, the dbt invoker."""

from dbt_ferry.cli.main import entry

entry()

from dbt_ferry.cli.main import main

main()

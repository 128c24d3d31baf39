"""Build, publish, list, promote and fetch releases."""

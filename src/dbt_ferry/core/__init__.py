"""The core: names, versions, checksums, manifests, errors, safe archives. No SDK imports."""

"""jaxrl.tabular."""

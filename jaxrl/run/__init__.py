"""jaxrl.run."""

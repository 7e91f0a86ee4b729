"""jaxrl.agents."""

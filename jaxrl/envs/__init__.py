"""jaxrl.envs."""

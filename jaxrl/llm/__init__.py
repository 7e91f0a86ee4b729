"""jaxrl.llm."""

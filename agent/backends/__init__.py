"""Where the agent's tools read from and act through: interfaces and implementations."""

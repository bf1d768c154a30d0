"""`vigil serve`: webhooks in (Alertmanager, deploy systems), durable intake, workers that
triage incidents and watch deploys, and a small read API."""

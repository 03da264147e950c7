"""govflow.api: the FastAPI application (routes, schemas, auth, problem details)."""

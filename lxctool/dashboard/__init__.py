"""The live web dashboard: one sampler (hub), the Starlette app, token auth, the uvicorn server."""

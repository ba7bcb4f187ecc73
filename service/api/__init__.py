"""The HTTP edge: the FastAPI app (`service.api.main:app`), its routes, middleware, admission and error mapping.

Everything FastAPI or Starlette lives here; the rest of `service` is the runtime library it serves.
"""

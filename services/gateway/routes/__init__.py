"""The gateway's HTTP API, a module per resource: each route validates, asks a service, answers.

Who may see what is decided in `services.gateway.policy`; `app.create_app` includes the routers in
the order FastAPI should try them.
"""

"""Gateway: the only HTTP surface (REST API, later the web UI); talks to the others over NATS."""

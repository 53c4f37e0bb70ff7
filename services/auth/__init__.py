"""Auth service: verifies tokens and keeps revocations."""

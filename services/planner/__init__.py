"""Planner service: owns recipes and runs; plans steps and drives runs over the bus."""

"""Analyzer service: extracts features (tempo, beats, energy, motion) from inputs."""

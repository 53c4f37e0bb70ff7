"""The built-in effects, one module each; every module exposes `EFFECT`, an `EffectSpec`.

They are registered as `artdag.effects` entry points in the project's pyproject.toml.
"""

"""Cache service: owns content metadata (the `content` table)."""

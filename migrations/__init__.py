"""Alembic migrations; `intake init` runs them (`upgrade head`)."""

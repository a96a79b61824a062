"""Plain, typed rules of the gateway: no Flask, no SQLAlchemy, no vendor formats."""

"""Storage: SQLModel tables, engine creation, Alembic migrations."""

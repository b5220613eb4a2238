"""Adding the columns a newer release declares to the tables an older one created.

`create_all` creates missing tables and never alters existing ones, so a database from before a
column was added would fail at the first query naming it. Until the schema is managed by Alembic
revisions (README, "Schema changes"), the columns that are missing are added at start with
`ALTER TABLE ... ADD COLUMN`, each nullable or with its server default, which both SQLite and
PostgreSQL do in place. Indexes changed since are not rebuilt: the old ones keep working, only
slower where a newer index would cover more.
"""

from sqlalchemy import Column, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from event_importer.db.models import Base


def add_missing_columns(engine: Engine) -> list[str]:
    """Add every model column missing from its existing table; the `table.column` names added."""
    added: list[str] = []
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and _add(engine, table.name, column):
                added.append(f"{table.name}.{column.name}")
    return added


def _add(engine: Engine, table: str, column: Column[object]) -> bool:
    preparer = engine.dialect.identifier_preparer
    ddl = f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} "
    ddl += column.type.compile(dialect=engine.dialect)
    if column.server_default is not None:
        default = column.server_default.arg  # type: ignore[attr-defined]
        ddl += f" DEFAULT '{default}'" if isinstance(default, str) else f" DEFAULT {default}"
    try:
        with engine.begin() as connection:
            connection.execute(text(ddl))
    except DBAPIError:
        # Another process added it at the same moment; anything else shows at the next query.
        if column.name in {c["name"] for c in inspect(engine).get_columns(table)}:
            return False
        raise
    return True

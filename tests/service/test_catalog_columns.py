"""A catalog made before a column existed gets it when the server opens it (SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect

from customlabels.service.catalog import Catalog


def test_new_columns_are_added_to_an_older_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    old = sqlite3.connect(path)
    old.execute(  # dataset_entries and projects as an older version made them
        "CREATE TABLE dataset_entries (id INTEGER PRIMARY KEY, dataset_id INTEGER, "
        "source_ref VARCHAR(2048), line TEXT, labels TEXT, num_boxes INTEGER, error TEXT)"
    )
    old.execute("INSERT INTO dataset_entries VALUES (1, 1, 's3://b/k.jpg', '{}', '{}', 0, '')")
    old.execute(
        "CREATE TABLE projects (id INTEGER PRIMARY KEY, name VARCHAR(255), arn VARCHAR(2048), "
        "created_at FLOAT, status VARCHAR(32), feature VARCHAR(32))"
    )
    old.commit()
    old.close()
    catalog = Catalog(f"sqlite:///{path}")
    try:
        columns = {c["name"] for c in inspect(catalog.engine).get_columns("dataset_entries")}
        assert "issues" in columns
        assert "tags" in {c["name"] for c in inspect(catalog.engine).get_columns("projects")}
        with catalog.engine.connect() as conn:
            (issues,) = conn.exec_driver_sql("SELECT issues FROM dataset_entries").one()
        assert issues == "[]"  # the existing row has the column's default
    finally:
        catalog.close()

"""The catalog: projects, datasets (with their entries) and model versions, in SQLAlchemy.

SQLite under the home folder by default; any SQLAlchemy URL (PostgreSQL) works. Dataset entries
are the Ground Truth JSON lines themselves (one row each), as ListDatasetEntries returns them.
Timestamps are seconds since the epoch (float).
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

__all__ = [
    "Catalog",
    "DatasetEntryRow",
    "DatasetRow",
    "DatasetStatus",
    "ProjectRow",
    "VersionRow",
    "VersionStatus",
]


class VersionStatus(enum.StrEnum):
    """ProjectVersionStatus, as the service names them."""

    TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_FAILED = "TRAINING_FAILED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


class DatasetStatus(enum.StrEnum):
    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    CREATE_COMPLETE = "CREATE_COMPLETE"
    CREATE_FAILED = "CREATE_FAILED"
    UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
    UPDATE_COMPLETE = "UPDATE_COMPLETE"
    UPDATE_FAILED = "UPDATE_FAILED"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"


class Base(DeclarativeBase):
    pass


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    arn: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32), default="CREATED")
    feature: Mapped[str] = mapped_column(String(32), default="CUSTOM_LABELS")
    tags: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON {key: value}
    datasets: Mapped[list[DatasetRow]] = relationship(back_populates="project")
    versions: Mapped[list[VersionRow]] = relationship(back_populates="project")


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "dataset_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    dataset_type: Mapped[str] = mapped_column(String(8))  # TRAIN | TEST
    arn: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str] = mapped_column(Text, default="")
    status_message_code: Mapped[str] = mapped_column(String(16), default="SUCCESS")
    tags: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON {key: value}
    project: Mapped[ProjectRow] = relationship(back_populates="datasets")


class DatasetEntryRow(Base):
    __tablename__ = "dataset_entries"
    __table_args__ = (UniqueConstraint("dataset_id", "source_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    source_ref: Mapped[str] = mapped_column(String(2048))
    line: Mapped[str] = mapped_column(Text)  # the JSON line, compact
    labels: Mapped[str] = mapped_column(Text, default="{}")  # JSON {label: box count}
    num_boxes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")  # "" when the entry is usable
    # JSON [{code, message, field, severity}]: every problem found on the line, usable or not
    issues: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


class VersionRow(Base):
    __tablename__ = "project_versions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str] = mapped_column(Text, default="")
    model_dir: Mapped[str] = mapped_column(Text)
    output_bucket: Mapped[str] = mapped_column(String(255), default="")
    output_prefix: Mapped[str] = mapped_column(Text, default="")
    auto_test: Mapped[int] = mapped_column(Integer, default=0)
    time_budget_s: Mapped[float] = mapped_column(Float, default=0.0)
    training_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    training_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    f1_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary_key: Mapped[str] = mapped_column(Text, default="")
    manifest_summary_key: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="{}")  # JSON {key: value}
    description: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the Celery task id once the job went to the ``train`` queue ("" while embedded or unsent)
    task_id: Mapped[str] = mapped_column(Text, default="", server_default="")
    project: Mapped[ProjectRow] = relationship(back_populates="versions")

    @property
    def tag_map(self) -> dict[str, str]:
        return _tag_map(self.tags)


def _tag_map(text: str | None) -> dict[str, str]:
    value: dict[str, str] = json.loads(text or "{}")
    return value


class Catalog:
    """The database behind the service.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        _add_new_columns(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising our own writes avoids "database is locked"
        self.lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self.lock, self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()


def _add_new_columns(engine: Any) -> None:
    """Add the columns a catalog made by an older version lacks (``create_all`` makes missing
    tables only). Only columns with a server default can be added this way, so each new column
    declares one."""
    existing = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if column.server_default is None:
                    raise RuntimeError(
                        f"catalog: new column {table.name}.{column.name} needs a "
                        "server_default to be added to an existing catalog"
                    )
                kind = column.type.compile(engine.dialect)
                default = column.server_default.arg  # type: ignore[attr-defined]
                conn.execute(
                    text(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind} "
                        f"NOT NULL DEFAULT '{default}'"
                    )
                )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()

"""Database tables (SQLAlchemy Core): users with their profile, and every answer they gave.

The profile (weights, covariance) lives on the user row: an answer locks that row, stores the answer
and rewrites the profile refit from all stored answers, in one transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

metadata = MetaData()

users = Table(
    "preflm_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("model_id", String(64), nullable=True),
    Column("weights", Text, nullable=True),
    Column("covariance", Text, nullable=True),
    Column("n_answers", Integer, nullable=False, server_default="0"),
    Column("confidence", Float, nullable=False, server_default="0"),
)

answers = Table(
    "preflm_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("question_id", Integer, nullable=False),
    Column("preference", Float, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "question_id", name="uq_answers_user_question"),
    UniqueConstraint("user_id", "idempotency_key", name="uq_answers_user_key"),
)

service_meta = Table(
    "preflm_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

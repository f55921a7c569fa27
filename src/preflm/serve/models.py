"""Database tables (SQLAlchemy Core): users with their profile, every answer they gave, and the web
pages' invites, sessions and A/B studies.

The profile (weights, covariance) lives on the user row: an answer locks that row, stores the answer
and rewrites the profile refit from all stored answers, in one transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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

invites = Table(
    "preflm_invites",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("study_id", String(32), ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sessions = Table(
    "preflm_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("study_id", String(32), ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=True),
    Column("is_admin", Boolean, nullable=False, server_default="0"),
    Column("expires_at", Float, nullable=False),
)

studies = Table(
    "preflm_studies",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("prompts", Text, nullable=False),
    Column("num_candidates", Integer, nullable=False),
    Column("budget", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

participants = Table(
    "preflm_participants",
    metadata,
    Column("study_id", String(32), ForeignKey("preflm_studies.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(64), ForeignKey("preflm_users.id", ondelete="CASCADE"), primary_key=True),
)

judgments = Table(
    "preflm_judgments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", String(32), ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", String(64), ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False),
    Column("prompt_index", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("personalized_left", Boolean, nullable=False),
    Column("default_text", Text, nullable=False),
    Column("personalized_text", Text, nullable=False),
    Column("choice", String(16), nullable=True),
    Column("comment", Text, nullable=True),
    Column("judged_at", Float, nullable=True),
    UniqueConstraint("study_id", "user_id", "prompt_index", name="uq_judgments_study_user_prompt"),
)

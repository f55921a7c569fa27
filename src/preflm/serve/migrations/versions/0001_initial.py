"""Users with their profile, answers, service metadata.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preflm_users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("weights", sa.Text, nullable=True),
        sa.Column("covariance", sa.Text, nullable=True),
        sa.Column("n_answers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("confidence", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "preflm_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("question_id", sa.Integer, nullable=False),
        sa.Column("preference", sa.Float, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("user_id", "question_id", name="uq_answers_user_question"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_answers_user_key"),
    )
    op.create_index("ix_preflm_answers_user_id", "preflm_answers", ["user_id"])
    op.create_table(
        "preflm_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("preflm_meta")
    op.drop_index("ix_preflm_answers_user_id", "preflm_answers")
    op.drop_table("preflm_answers")
    op.drop_table("preflm_users")

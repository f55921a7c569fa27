"""Web pages: single-use invites, cookie sessions, blind A/B studies with participants and judgments.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preflm_studies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prompts", sa.Text, nullable=False),
        sa.Column("num_candidates", sa.Integer, nullable=False),
        sa.Column("budget", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "preflm_invites",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("study_id", sa.String(32), sa.ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_preflm_invites_user_id", "preflm_invites", ["user_id"])
    op.create_table(
        "preflm_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("study_id", sa.String(32), sa.ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_preflm_sessions_user_id", "preflm_sessions", ["user_id"])
    op.create_table(
        "preflm_participants",
        sa.Column("study_id", sa.String(32), sa.ForeignKey("preflm_studies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("preflm_users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "preflm_judgments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study_id", sa.String(32), sa.ForeignKey("preflm_studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("preflm_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prompt_index", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("personalized_left", sa.Boolean, nullable=False),
        sa.Column("default_text", sa.Text, nullable=False),
        sa.Column("personalized_text", sa.Text, nullable=False),
        sa.Column("choice", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("judged_at", sa.Float, nullable=True),
        sa.UniqueConstraint("study_id", "user_id", "prompt_index", name="uq_judgments_study_user_prompt"),
    )
    op.create_index("ix_preflm_judgments_study_id", "preflm_judgments", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_preflm_judgments_study_id", "preflm_judgments")
    op.drop_table("preflm_judgments")
    op.drop_table("preflm_participants")
    op.drop_index("ix_preflm_sessions_user_id", "preflm_sessions")
    op.drop_table("preflm_sessions")
    op.drop_index("ix_preflm_invites_user_id", "preflm_invites")
    op.drop_table("preflm_invites")
    op.drop_table("preflm_studies")

"""Offline Attributes world: users with stylistic preferences over seven attributes.

Generates pairwise preference datasets with known per-user rewards and scores
any text (including LLM outputs) on the seven attributes, so a user's true
reward of a new answer is ``true_reward(weights, [answer])``.
"""

from .attributes import ATTRIBUTE_NAMES, ATTRIBUTES, SCORERS, Attribute, score_text, score_texts
from .bank import PROMPTS, TOPICS, PromptEntry, get_prompt
from .styles import DEFAULT_STYLE_PROBS, candidates_for_prompt, random_styles, realize
from .world import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TIE_MARGIN,
    FRAME_COLUMNS,
    User,
    World,
    WorldConfig,
    build_world,
    load_users,
    mixture_users,
    oracle_accuracy,
    paper_users,
    simulate_preferences,
    template_training_answers,
    true_reward,
    users_path,
    world_from_texts,
    write_world,
)

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "Attribute",
    "DEFAULT_STYLE_PROBS",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TIE_MARGIN",
    "FRAME_COLUMNS",
    "PROMPTS",
    "PromptEntry",
    "SCORERS",
    "TOPICS",
    "User",
    "World",
    "WorldConfig",
    "build_world",
    "candidates_for_prompt",
    "get_prompt",
    "load_users",
    "mixture_users",
    "oracle_accuracy",
    "paper_users",
    "random_styles",
    "realize",
    "score_text",
    "score_texts",
    "simulate_preferences",
    "template_training_answers",
    "true_reward",
    "users_path",
    "world_from_texts",
    "write_world",
]

import numpy as np
import pytest

from preflm.featurize import StyleStatsFeaturizer, build_featurizer, featurizer_from_name
from preflm.featurize.style import STYLE_NAMES

POEM = "Oh, the road is long and wide,\nWith the wind upon my side,\nI will walk until the night,\nAnd the stars come into sight."
PROSE = "The road is long and wide. However, the wind helps; we walk until night (when the stars appear)."
LIST = "Steps:\n\n1. Apply for a permit.\n2. Pass the written test.\n- Book a road test.\n\n```\nprint(1)\n```"


def column(name: str) -> int:
    return STYLE_NAMES.index(name)


def test_style_stats_shape_dtype_and_determinism():
    featurizer = StyleStatsFeaturizer()
    texts = [POEM, PROSE, LIST, ""]
    first = featurizer.transform(["q"] * 4, texts)
    assert first.shape == (4, featurizer.dim) == (4, len(STYLE_NAMES))
    assert first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, StyleStatsFeaturizer().transform(["other"] * 4, texts))
    assert featurizer.transform([], []).shape == (0, featurizer.dim)


def test_style_stats_see_layout_rhyme_and_register():
    poem, prose, listing = StyleStatsFeaturizer().transform(["q"] * 3, [POEM, PROSE, LIST])
    assert poem[column("log_lines")] > prose[column("log_lines")]
    assert poem[column("rhyme_share")] > 0.5 and prose[column("rhyme_share")] == 0
    assert poem[column("line_end_comma_share")] == pytest.approx(0.75)
    assert listing[column("list_item_share")] > 0 == poem[column("list_item_share")]
    assert listing[column("code_fence")] == 1 and prose[column("code_fence")] == 0
    assert prose[column("formal_marker_rate")] > 0 == poem[column("formal_marker_rate")]
    assert prose[column("first_plural_rate")] > 0 and prose[column("parenthesis_rate")] > 0
    assert poem[column("casual_marker_rate")] > 0


def test_style_stats_spec_round_trip_and_name():
    featurizer = StyleStatsFeaturizer()
    rebuilt = build_featurizer(featurizer.spec())
    assert isinstance(rebuilt, StyleStatsFeaturizer) and rebuilt.spec() == featurizer.spec()
    combined = featurizer_from_name("ngrams+stats+style")
    again = build_featurizer(combined.spec())
    texts = [POEM, PROSE]
    np.testing.assert_array_equal(combined.transform(["a", "b"], texts), again.transform(["a", "b"], texts))
    assert combined.dim == again.dim == featurizer_from_name("ngrams+stats").dim + len(STYLE_NAMES)


def test_style_stats_reject_mismatched_inputs():
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        StyleStatsFeaturizer().transform(["a", "b"], ["only one"])

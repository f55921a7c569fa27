import numpy as np
import pytest

from preflm.featurize import HashedNgramFeaturizer, build_featurizer, featurizer_from_name


def test_ngrams_width_from_name_round_trips_through_the_spec():
    featurizer = featurizer_from_name("ngrams:64+stats")
    ngrams = featurizer.parts[0]
    assert isinstance(ngrams, HashedNgramFeaturizer) and ngrams.dim == 64
    rebuilt = build_featurizer(featurizer.spec())
    texts = ["Oh, the road is long,\nand the night is wide.", "The road is long. The night is wide."]
    first = featurizer.transform(["q", "q"], texts)
    assert first.shape == (2, 64 + 12)
    np.testing.assert_array_equal(first, rebuilt.transform(["q", "q"], texts))


@pytest.mark.parametrize("name", ["ngrams:", "ngrams:wide", "ngrams:-5", "ngrams:0"])
def test_bad_ngrams_width_is_refused(name):
    with pytest.raises(ValueError, match="ngrams:<dim>|dim must be >= 1"):
        featurizer_from_name(name)

"""The service scores with the compiled ranker when the fast extra is there, and ranks as LightGBM does."""

import numpy as np
import pytest

from shortlist.ranking import compiled
from shortlist.serving.engine import Engine


@pytest.mark.skipif(not compiled.available(), reason="the fast extra (lleaves) is not installed")
def test_engine_ranks_with_the_compiled_forest_exactly_as_lightgbm(model_dir):
    engine = Engine.load(model_dir)
    ranker = engine.model.ranker_
    forest = getattr(ranker, "compiled_", None)
    assert forest is not None
    for user in range(0, int(engine.users.ids.len()), 7):
        ranker.compiled_ = forest
        fast = engine.recommend_user(user, 20)
        ranker.compiled_ = None
        slow = engine.recommend_user(user, 20)
        assert np.array_equal(fast.items, slow.items)
        assert np.allclose(fast.scores, slow.scores, rtol=1e-6, atol=1e-6, equal_nan=True)

"""A request's candidates go from fusion to features as numpy columns: the same values as the frame path."""

import numpy as np

from shortlist.serving.engine import Engine


def test_request_columns_and_features_equal_the_frame_path(model_dir):
    engine = Engine.load(model_dir)
    gen, model = engine.gen, engine.model
    for user in range(0, int(engine.users.ids.len()), 9):
        users = np.array([user])
        tops = gen.topk_all(users, exclude_seen=engine.exclude_seen)
        frame, cols = gen.fuse_tops(users, tops), gen.fuse_tops_columns(users, tops)
        assert list(cols) == frame.columns
        for name in frame.columns:
            want = frame.get_column(name).to_numpy()
            assert cols[name].dtype == want.dtype and np.array_equal(cols[name], want, equal_nan=True), name
        np.testing.assert_array_equal(engine._features(cols, None), model.features_for(frame))
        history = model.user_history(user)
        np.testing.assert_array_equal(engine._features(cols, history), model.features_for(frame, history=history))

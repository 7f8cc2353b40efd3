"""The shortlist model as an MLflow pyfunc: a frame of ``user_id`` in, recommendation rows out.

Nothing is pickled: MLflow logs the model "from code" (:mod:`shortlist.tracking.pyfunc_model`,
which names :class:`ShortlistPyfunc`), and the artifacts are the model directory in shortlist's
own format, loaded with :func:`~shortlist.pipeline.load.load_model` (checksums verified).
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import polars as pl
from mlflow.pyfunc import PythonModel

from shortlist.errors import DataValidationError, MissingColumnError
from shortlist.schema import ITEM_ID, RANK, SCORE, USER_ID

#: The key of the model directory among the pyfunc's artifacts.
ARTIFACT_KEY = "shortlist_model"
#: Items per user when the caller passes no ``k`` param.
DEFAULT_K = 10
#: The file MLflow runs to build the model (models from code).
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


class ShortlistPyfunc(PythonModel):
    """``predict(frame with user_id, params={"k": 10})`` → ``user_id, item_id, rank, score`` rows, the
    same rows as ``shortlist recommend`` (unknown users get the popularity fallback)."""

    # MLflow validates inputs by the signature logged with the model (a frame with a string
    # ``user_id``), not by ``predict``'s type hints: it is told to skip them, and ``model_input``
    # has none (MLflow would try to infer a signature from it and warn).
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        from shortlist.pipeline.load import load_model

        self.model_ = load_model(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:
        if not hasattr(model_input, "columns") or USER_ID not in model_input.columns:
            found = list(getattr(model_input, "columns", []))
            raise MissingColumnError("pyfunc input", USER_ID, found, hint="pass a frame with a user_id column")
        k = (params or {}).get("k", DEFAULT_K)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise DataValidationError(f"pyfunc param k={k!r}: pass a positive whole number of items per user")
        users = pl.Series(USER_ID, list(model_input[USER_ID]), strict=False)
        recs = self.model_.recommend(users, int(k))
        return recs.select(USER_ID, ITEM_ID, RANK, SCORE).to_pandas()

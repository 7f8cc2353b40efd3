"""The file MLflow runs to rebuild the pyfunc ("models from code"): no pickle is ever written."""

from mlflow.models import set_model

from shortlist.tracking.pyfunc import ShortlistPyfunc

set_model(ShortlistPyfunc())

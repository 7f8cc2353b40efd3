"""The HTTP service: ``create_app(ServingSettings(model_dir=...))``; run it with ``shortlist serve``."""

from shortlist.serving.settings import ServingSettings

__all__ = ["ServingSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # FastAPI is an optional extra: import it only when asked
        from shortlist.serving.app import create_app

        return create_app
    raise AttributeError(name)

"""The preference service: onboarding, scoring and personalized generation over HTTP (FastAPI).

``create_app(ServeSettings(model_dir, questions))`` builds the app; ``preflm serve`` runs it with uvicorn.
The service calls the library (factorize, onboard, generate); nothing in the library imports it.
"""

from preflm.serve.settings import ServeSettings


def create_app(settings: ServeSettings):
    from preflm.serve.app import create_app as build

    return build(settings)


__all__ = ["ServeSettings", "create_app"]

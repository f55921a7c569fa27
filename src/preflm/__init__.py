"""preflm: personalize LLMs to individual users with reward factorization (PReF).

Pipeline, one package per stage: ``data`` -> ``featurize`` -> ``factorize`` -> ``onboard`` ->
``generate`` -> ``serve``; ``simulate`` and ``eval`` stand beside them and ``cli`` is a thin shell.
"""

__version__ = "0.1.0"

import os
import sys

from hypothesis import HealthCheck, Phase, settings

# tests/reference.py is imported as ``reference`` whatever pytest's import mode is.
sys.path.insert(0, os.path.dirname(__file__))

_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    print_blob=True,
    # The explain phase can die on an internal assertion while reporting a real failure
    # (HypothesisWorks/hypothesis#4339, #4708), hiding the falsifying example.
    phases=[p for p in Phase if p != Phase.explain],
)
# Per-test example counts are set with reference.examples(n); scale them all for a long
# run with e.g. FASTPOOL_HYPOTHESIS_SCALE=10.
settings.register_profile("fastpool", max_examples=100, **_common)
settings.load_profile("fastpool")

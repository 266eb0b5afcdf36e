"""Test settings shared by every test module."""

from hypothesis import HealthCheck, settings

# Property tests compare against torch on 2-core CI machines: no per-example deadline, a fixed
# number of examples, and the same examples on every run (derandomize) so CI is reproducible.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")

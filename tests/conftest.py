"""Fixtures shared across the test folders."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def float64():
    """Default dtype float64 for the test (exact comparisons of two computations of the same thing)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


# ------------------------------------------------------------------------------------------- learning checks
# A learning test trains briefly and compares a measured quantity with a threshold. Float results differ between
# CPUs, so a threshold is only trustworthy with a margin measured over several seeds: `--learning-seeds 0,1,2,3,4`
# runs every `@pytest.mark.learning` test once per seed, and benchmarks/learning_margins.py tabulates the margins
# they record (docs/benchmarks.md, "Learning-test margins"). Without the option each runs at its marker's seed.
def pytest_addoption(parser):
    parser.addoption("--learning-seeds", default=None,
                     help="comma-separated seeds for every @pytest.mark.learning test (default: the marker's seed)")


def pytest_configure(config):
    config.addinivalue_line("markers", "learning(seed): a short training checked against a threshold; run it "
                                       "over several seeds with --learning-seeds")


def pytest_generate_tests(metafunc):
    if "learning_seed" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("learning")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} uses learning_seed without @pytest.mark.learning")
    option = metafunc.config.getoption("--learning-seeds")
    seeds = [int(s) for s in option.split(",")] if option else [marker.kwargs.get("seed", 0)]
    metafunc.parametrize("learning_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture
def learning_margin(record_property):
    """``check(measured, threshold)``: assert ``measured > threshold`` (``below=True``: ``<``) and record both
    (junit properties, read by benchmarks/learning_margins.py)."""

    def check(measured: float, threshold: float, detail: object = "", below: bool = False) -> None:
        record_property("learning_measured", float(measured))
        record_property("learning_threshold", float(threshold))
        record_property("learning_direction", "below" if below else "above")
        assert (measured < threshold) if below else (measured > threshold), (measured, threshold, detail)

    return check

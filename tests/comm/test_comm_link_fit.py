"""The alpha-beta fit: recovers a known link, refuses what cannot be fitted, measures a shaped one."""

import numpy as np
import pytest

from companion import comm
from companion.comm import link_fit, shaped_link
from companion.comm.shaped_link import ShapedLink


@pytest.mark.parametrize("operation", link_fit.OPERATIONS)
def test_fit_recovers_a_known_link_from_noisy_times(operation):
    alpha, beta, p = 3e-4, 2e8, 4
    sizes = link_fit.default_sizes()
    # times written out from the table in the module docstring, not from link_fit.coefficients
    ring = {"all_reduce": 2 * (p - 1), "reduce_scatter": p - 1}
    times = []
    for n in sizes:
        if operation == "p2p":
            t = alpha + n / beta
        else:
            t = ring[operation] * (alpha + n / (p * beta))
        times.append(t)
    noise = np.random.default_rng(0).normal(1.0, 0.02, len(sizes))
    fit = link_fit.fit_link(operation, sizes, np.array(times) * noise, p)
    assert fit.alpha_s == pytest.approx(alpha, rel=0.1)
    assert fit.link.bandwidth_bytes_per_s == pytest.approx(beta, rel=0.05)
    assert fit.rms_rel_residual < 0.05


def test_sizes_span_4_kib_to_64_mib():
    sizes = link_fit.default_sizes()
    assert sizes[0] == 4096 and sizes[-1] == 64 * 2**20 and len(sizes) >= 8


def test_a_fit_needs_two_sizes():
    with pytest.raises(ValueError, match="at least two distinct message sizes"):
        link_fit.fit_link("p2p", [4096, 4096], [1e-3, 1.1e-3], 2)


def test_a_sweep_needs_two_sizes():
    with pytest.raises(ValueError, match="at least two message sizes"):
        link_fit.sweep_worker(0, 2, [4096])


def test_times_must_be_positive_and_grow():
    with pytest.raises(ValueError, match="finite and > 0"):
        link_fit.fit_link("p2p", [4096, 8192], [1e-3, 0.0], 2)
    with pytest.raises(ValueError, match="do not grow with message size"):
        link_fit.fit_link("p2p", [4096, 8192, 16384], [3e-3, 2e-3, 1e-3], 2)


def test_unknown_operation():
    with pytest.raises(ValueError, match="operation must be one of"):
        link_fit.fit_link("all_to_all", [4096, 8192], [1e-3, 2e-3], 2)


@pytest.mark.skipif(shaped_link.support_problem() is not None, reason="no shaped link here")
def test_the_fitted_bandwidth_of_a_shaped_link_is_the_rate_set():
    link = ShapedLink(0.4)
    sizes = link_fit.default_sizes(256 * 1024, 16 * 2**20)
    records = comm.launch(link_fit.sweep_worker, 2, sizes, 3, ("all_reduce", "p2p"), link=link, timeout_s=120)
    fits = link_fit.fit_sweep(records[0], 2, 2 * link.burst_bytes)
    for op in ("all_reduce", "p2p"):
        # the shaper's rate, less the frame headers it charges: set, not fitted
        assert fits[op].link.bandwidth_bytes_per_s == pytest.approx(link.payload_bytes_per_s, rel=0.15), op

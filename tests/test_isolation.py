"""Guards of test isolation: what one test changes in shared fixtures must not reach the next."""

from __future__ import annotations


def test_tokens_a_test_adds_stay_in_that_test(api, tokens):
    api.tokens["cangshan.cc.supervisor"] = "demo-token-of-a-deployed-district"
    assert "cangshan.cc.supervisor" not in tokens

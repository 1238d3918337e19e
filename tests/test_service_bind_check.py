"""Binding beyond loopback needs keys or --insecure."""

from __future__ import annotations

import pytest

from service.bind_check import InsecureBindError, check_bind, is_loopback


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"]
)
def test_loopback_binds_need_nothing(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, keys_exist=False, insecure=False)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "chancery.example.org", ""]
)
def test_other_binds_without_keys_are_refused_with_what_to_do(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(InsecureBindError, match="chancery keys create") as raised:
        check_bind(host, keys_exist=False, insecure=False)
    assert raised.value.exit_code == 2
    assert "--insecure" in str(raised.value)


def test_keys_or_insecure_allow_any_bind() -> None:
    check_bind("0.0.0.0", keys_exist=True, insecure=False)
    check_bind("0.0.0.0", keys_exist=False, insecure=True)

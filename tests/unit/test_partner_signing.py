"""AliExpress sync gateway signatures against vectors written out by hand: the sorted key+value string is spelled
out literally, and the digests were computed from that string once and pinned."""

import hashlib
import hmac

import pytest

from accrual.partners.aliexpress import sign

PARAMS = {
    "timestamp": "1762000000000",
    "method": "aliexpress.affiliate.order.listbyindex",
    "app_key": "34567890",
    "v": "2.0",
    "format": "json",
    "start_time": "2026-11-01 00:00:00",
    "page_size": "50",
}
SECRET = "test-secret"
# Keys sorted: app_key, format, method, page_size, sign_method, start_time, timestamp, v
SHA256_TEXT = (
    "app_key34567890formatjsonmethodaliexpress.affiliate.order.listbyindexpage_size50"
    "sign_methodsha256start_time2026-11-01 00:00:00timestamp1762000000000v2.0"
)
SHA256_SIGN = "D509DE8B893B353F8B77F068B11A0581FA38394E80EED167A8FD09B87B6700DA"
MD5_SIGN = "A61EE88A250C7C0A7F15EBDBCD266D5A"


def test_sha256_is_hmac_of_the_sorted_key_value_string_upper_hex():
    # Given the parameters in no particular order, with sign_method sha256
    params = {**PARAMS, "sign_method": "sha256"}
    # When signed
    signature = sign(params, SECRET, "sha256")
    # Then it is the pinned vector, which is HMAC-SHA256(secret, sorted key+value text) in upper-case hex
    assert signature == SHA256_SIGN
    assert signature == hmac.new(SECRET.encode(), SHA256_TEXT.encode(), hashlib.sha256).hexdigest().upper()


def test_md5_wraps_the_string_in_the_secret():
    params = {**PARAMS, "sign_method": "md5"}
    text = SHA256_TEXT.replace("sign_methodsha256", "sign_methodmd5")
    assert sign(params, SECRET, "md5") == MD5_SIGN
    assert MD5_SIGN == hashlib.md5(f"{SECRET}{text}{SECRET}".encode()).hexdigest().upper()


def test_the_sign_parameter_itself_and_absent_values_are_not_signed():
    params = {**PARAMS, "sign_method": "sha256"}
    assert sign({**params, "sign": "ANYTHING", "start_query_index_id": None}, SECRET, "sha256") == SHA256_SIGN


def test_any_change_of_a_value_changes_the_signature():
    params = {**PARAMS, "sign_method": "sha256"}
    assert sign({**params, "page_size": "49"}, SECRET, "sha256") != SHA256_SIGN


def test_unknown_sign_method_is_refused():
    with pytest.raises(ValueError, match="sign_method"):
        sign(PARAMS, SECRET, "sha1")

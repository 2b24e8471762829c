"""Value normalisation: canonical forms, validity flags, and the fast phone path vs
libphonenumber itself."""

from __future__ import annotations

import phonenumbers
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from c360_assets.lib import normalise
from c360_assets.lib.registry import load_registry

REGIONS = ["US", "DE", "GB", "FR", "ES", "NL", "CA", "AT"]


def _norm(values: list[str | None], kind: str) -> list[tuple]:
    frame = normalise.normalise(pl.DataFrame({"v": values}, schema={"v": pl.String}), "v", kind)
    return list(frame.iter_rows())


def test_email_is_trimmed_and_lower_cased_and_junk_is_flagged():
    assert _norm(["  Jane.Doe@Example.COM ", "not-an-email", None], "email") == [
        ("jane.doe@example.com", True), ("not-an-email", False), (None, None)]


def test_country_names_codes_and_aliases_read_as_alpha_2():
    got = _norm(["Deutschland", "germany", "DEU", "U.S.", "United Kingdom", "Narnia"], "country")
    assert got == [("DE", True), ("DE", True), ("DE", True), ("US", True), ("GB", True),
                   ("Narnia", False)]


def test_names_are_nfc_trimmed_and_directory_order_full_names_read_naturally():
    decomposed = "Jo\u0308rg"  # o + combining diaeresis
    assert _norm([f" {decomposed}  ", "Ann  Lee"], "name") == [("Jörg", True), ("Ann Lee", True)]
    assert _norm(["Doe, Jane", "Jane Doe"], "full_name") == [("Jane Doe", True),
                                                              ("Jane Doe", True)]


def test_consent_states_map_to_true_false():
    got = _norm(["SUBSCRIBED", "not_subscribed", "unsubscribed", "pending", "redacted",
                 "invalid", "true", "false", "maybe"], "consent")
    assert [v for v, _ in got] == ["true", "false", "false", "false", "false", "false", "true",
                                   "false", "maybe"]
    assert got[-1][1] is False


def test_dates_read_as_iso():
    assert _norm(["1985-04-12", "1985-04-12T00:00:00Z", "12/04/1985"], "date") == [
        ("1985-04-12", True), ("1985-04-12", True), ("12/04/1985", False)]


def test_phone_forms_of_one_number_give_one_e164_value():
    raw = pl.Series(["+4915112345678", "0151 12345678", "+49 151 12345678", "004915112345678"])
    out = normalise.phone_frame(raw, pl.Series(["DE"] * 4))
    assert out.get_column("value").to_list() == ["+4915112345678"] * 4
    assert out.get_column("valid").all()


@st.composite
def landed_phone(draw: st.DrawFn) -> tuple[str, str]:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                 phonenumbers.PhoneNumberType.FIXED_LINE]))
    number = phonenumbers.example_number_for_type(region, kind)
    digits = str(number.national_number)
    tail = draw(st.text("0123456789", min_size=0, max_size=4))
    cut = draw(st.integers(0, 2))
    national = (digits[: len(digits) - len(tail)] + tail)[: len(digits) - cut]
    number = phonenumbers.parse(f"+{number.country_code}{national}", None)
    style = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.E164,
                                  phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                                  phonenumbers.PhoneNumberFormat.NATIONAL]))
    return phonenumbers.format_number(number, style), region


@settings(max_examples=300, deadline=None)
@given(st.lists(landed_phone(), min_size=1, max_size=20))
def test_fast_phone_path_agrees_with_libphonenumber(phones):
    """Validity always agrees; a valid number's E.164 form always agrees."""
    out = normalise.phone_frame(pl.Series([p for p, _ in phones]),
                                pl.Series([r for _, r in phones]))
    for (raw, region), (value, valid) in zip(phones, out.iter_rows(), strict=True):
        ref_value, ref_valid = normalise.e164_reference(raw, region)
        assert valid == ref_valid, (raw, region, value)
        if ref_valid:
            assert value == ref_value, (raw, region)


def test_length_limits_and_control_characters_make_a_value_invalid():
    local_64, local_65 = "a" * 64 + "@example.com", "a" * 65 + "@example.com"
    domain_long = "x@" + ("d" * 60 + ".") * 4 + "com"  # 250 characters: fine
    too_long = "x@" + ("d" * 60 + ".") * 5 + "com"  # 311 characters
    assert [v for _, v in _norm([local_64, local_65, domain_long, too_long], "email")] == [
        True, False, True, False]
    assert _norm(["Jo\x00hn", "\x1b[31mRed", "N" * 255, "N" * 256], "name") == [
        ("John", False), ("[31mRed", False), ("N" * 255, True), ("N" * 256, False)]


def test_only_limit_breaches_are_implausible_never_a_format_failure():
    rows = [  # attribute, landed, normalised, implausible?
        ("email", "not-an-email", "not-an-email", False),
        ("email", "e" * 300 + "@x.de", "e" * 300 + "@x.de", True),
        ("phone", "+1 617 020 6070", "+16170206070", False),  # unassigned, plausible
        ("mobilePhone", "1" * 65, "+" + "1" * 65, True),
        ("firstName", "Jo\x00hn", "John", True),
        ("firstName", "  " + "N" * 255 + "  ", "N" * 255, False),
        ("someTrait", "t" * 1_001, "t" * 1_001, True),
        ("firstName", None, None, False),
    ]
    frame = pl.DataFrame({"attribute": [r[0] for r in rows], "raw": [r[1] for r in rows],
                          "value": [r[2] for r in rows]})
    got = frame.select(normalise.breaks_limits(pl.col("raw"), pl.col("value"),
                                               normalise.kind_expr(pl.col("attribute"), load_registry().kinds())))
    assert got.to_series().to_list() == [r[3] for r in rows]

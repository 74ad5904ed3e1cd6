"""Vendor-neutral VMS helpers and settings: windows, coverage, piece results, configuration errors."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.vms.base import Download, Interval, clip_to_window, gaps, split_window
from shared.vms.settings import VmsConfigError, VmsSettings

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_window_longer_than_the_vendor_limit_is_split_into_consecutive_pieces():
    pieces = split_window(at(0), at(150), timedelta(minutes=60))
    assert pieces == [Interval(at(0), at(60)), Interval(at(60), at(120)), Interval(at(120), at(150))]
    assert split_window(at(10), at(10), timedelta(minutes=60)) == []


def test_recordings_are_clipped_to_the_window_and_merged_and_gaps_found():
    recorded = [Interval(at(-30), at(10)), Interval(at(10), at(20)), Interval(at(40), at(50)), Interval(at(70), at(90))]
    covered = clip_to_window(recorded, at(0), at(60))
    assert covered == [Interval(at(0), at(20)), Interval(at(40), at(50))]
    assert gaps(covered, at(0), at(60)) == [Interval(at(20), at(40)), Interval(at(50), at(60))]
    assert gaps([], at(0), at(60)) == [Interval(at(0), at(60))]


def test_downloads_survive_a_json_round_trip_for_a_restarted_function():
    download = Download("https://v.test/a.mp4", at(0), at(5), "a.mp4", 123, {"kind": "media", "start": "s"})
    assert Download.from_json(download.to_json()) == download
    assert "v.test" not in repr(download)


def test_een_settings_need_the_consent_token_and_name_what_is_missing():
    with pytest.raises(VmsConfigError, match="EEN_CLIENT_SECRET, EEN_REFRESH_TOKEN"):
        VmsSettings.from_env({"VMS_KIND": "een", "EEN_CLIENT_ID": "id"})


def test_unknown_vms_kind_and_bad_urls_are_clear_errors():
    with pytest.raises(VmsConfigError, match="VMS_KIND must be one of een, rhombus, verkada"):
        VmsSettings.from_env({"VMS_KIND": "milestone"})
    with pytest.raises(VmsConfigError, match="RHOMBUS_API_URL must be an absolute"):
        VmsSettings.from_env({"VMS_KIND": "rhombus", "RHOMBUS_API_KEY": "k", "RHOMBUS_API_URL": "api2"})


def test_an_unresolved_key_vault_reference_is_named_without_its_value():
    env = {"VMS_KIND": "rhombus", "RHOMBUS_API_KEY": "@Microsoft.KeyVault(SecretName=rhombus-key)"}
    with pytest.raises(VmsConfigError, match="RHOMBUS_API_KEY holds an unresolved Key Vault reference"):
        VmsSettings.from_env(env)


def test_rhombus_region_selects_the_eu_hosts_and_secrets_stay_out_of_repr():
    settings = VmsSettings.from_env({"VMS_KIND": "rhombus", "RHOMBUS_API_KEY": "secret-key", "RHOMBUS_REGION": "eu"})
    assert settings.rhombus_api_url == "https://api2.eu.rhombussystems.com"
    assert "secret-key" not in repr(settings)


def test_every_vms_problem_is_named_at_once_and_no_value_is_echoed():
    env = {"VMS_KIND": "een", "EEN_CLIENT_ID": "id", "EEN_VIDEO_ROUTE": "route-x1", "EEN_API_URL": "host-x2"}
    with pytest.raises(VmsConfigError) as raised:
        VmsSettings.from_env(env)
    message = str(raised.value)
    assert "VMS_KIND=een needs EEN_CLIENT_SECRET, EEN_REFRESH_TOKEN" in message
    assert "EEN_VIDEO_ROUTE must be one of direct, export" in message
    assert "EEN_API_URL must be an absolute http(s) URL" in message
    assert "x1" not in message and "x2" not in message
    with pytest.raises(VmsConfigError) as raised:
        VmsSettings.from_env({"VMS_KIND": "milestone-x3"})
    assert "x3" not in str(raised.value)


def test_values_are_stripped_and_another_vendors_settings_are_not_read():
    env = {"VMS_KIND": " Rhombus ", "RHOMBUS_API_KEY": " key \n", "EEN_VIDEO_ROUTE": "sideways", "VERKADA_REGION": "x"}
    settings = VmsSettings.from_env(env)
    assert (settings.kind, settings.rhombus_api_key, settings.een_video_route) == ("rhombus", "key", "direct")

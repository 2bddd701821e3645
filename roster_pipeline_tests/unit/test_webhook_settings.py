"""ROSTER_ALERT_WEBHOOK_URL: https (plain http only on this machine), never a link-local or cloud metadata
address, a private one only when ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE allows it; each refusal is one sentence
naming the variable and never the URL (it is a secret)."""

from __future__ import annotations

import pytest

from roster_pipeline.settings import ConfigError, OperationsSettings

SECRET = "T000-B000-secret-path"


def refused(url: str, **env) -> str:
    with pytest.raises(ConfigError) as error:
        OperationsSettings.from_env({"ROSTER_ALERT_WEBHOOK_URL": url, **env})
    sentence = str(error.value)
    assert "ROSTER_ALERT_WEBHOOK_URL" in sentence and SECRET not in sentence and sentence.count(". ") == 0
    return sentence


@pytest.mark.parametrize("url", [f"https://hooks.slack.com/services/{SECRET}", f"http://127.0.0.1:8080/{SECRET}",
                                 f"http://127.5.6.7/{SECRET}", f"http://[::1]:9/{SECRET}", f"http://localhost/{SECRET}",
                                 f"https://8.8.8.8/{SECRET}"])
def test_https_or_loopback_is_accepted(url):
    assert OperationsSettings.from_env({"ROSTER_ALERT_WEBHOOK_URL": url}).alert_webhook_url.get_secret_value() == url


@pytest.mark.parametrize("url", [f"http://hooks.slack.com/services/{SECRET}", f"http://8.8.8.8/{SECRET}"])
def test_plain_http_elsewhere_is_refused(url):
    assert "must be an https URL" in refused(url)


@pytest.mark.parametrize("url", [f"https://169.254.169.254/latest/{SECRET}", f"http://169.254.170.2/{SECRET}",
                                 f"https://[fe80::1]/{SECRET}", f"https://[::ffff:169.254.169.254]/{SECRET}"])
def test_link_local_and_metadata_addresses_are_refused_even_when_private_ones_are_allowed(url):
    assert "link-local" in refused(url)
    assert "link-local" in refused(url, ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE="1")


@pytest.mark.parametrize("url", [f"https://10.1.2.3/{SECRET}", f"https://172.20.0.5:8443/{SECRET}",
                                 f"https://192.168.1.10/{SECRET}", f"https://[fd00:ec2::254]/{SECRET}"])
def test_private_addresses_need_the_explicit_setting(url):
    assert "ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE=1" in refused(url)
    settings = OperationsSettings.from_env({"ROSTER_ALERT_WEBHOOK_URL": url, "ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert settings.alert_webhook_allow_private and settings.alert_webhook_url is not None


def test_malformed_values_are_one_sentence():
    assert "must be an https URL" in refused(f"hooks.slack.com/services/{SECRET}")
    assert "must be an https URL" in refused(f"https://hooks.slack.com:port/{SECRET}")
    assert "no single host" in refused(f"https://0.0.0.0/{SECRET}")
    with pytest.raises(ConfigError, match="ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE must be 1 or 0"):
        OperationsSettings.from_env({"ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE": "maybe"})

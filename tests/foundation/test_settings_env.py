"""breakglass.project.env: typed readers that name the variable when a value is wrong."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from breakglass.project.env import (
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    kek_problem,
)


@pytest.mark.parametrize(
    "raw, expected", [("1", True), ("TRUE", True), ("off", False), ("", False)]
)
def test_booleans_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("BG_FLAG", raw)
    assert env_bool("BG_FLAG") is expected


def test_a_missing_boolean_takes_its_default(monkeypatch):
    monkeypatch.delenv("BG_FLAG", raising=False)
    assert env_bool("BG_FLAG", default=True) is True


def test_a_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("BG_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"^BG_FLAG: expected a boolean.*'maybe'"):
        env_bool("BG_FLAG")


def test_a_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("BG_COUNT", "12s")
    with pytest.raises(ImproperlyConfigured, match=r"^BG_COUNT: expected an integer, got '12s'"):
        env_int("BG_COUNT", 3)


def test_an_integer_below_its_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("BG_COUNT", "0")
    with pytest.raises(ImproperlyConfigured, match=r"^BG_COUNT: must be at least 1, got 0"):
        env_int("BG_COUNT", 3, minimum=1)


def test_an_empty_integer_takes_its_default(monkeypatch):
    monkeypatch.setenv("BG_COUNT", " ")
    assert env_int("BG_COUNT", 3) == 3


def test_lists_split_on_commas_and_drop_blanks(monkeypatch):
    monkeypatch.setenv("BG_HOSTS", " a.example , ,b.example,")
    assert env_list("BG_HOSTS") == ["a.example", "b.example"]


def test_a_file_variant_wins_over_the_plain_variable(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("BG_SECRET", "from-the-environment")
    monkeypatch.setenv("BG_SECRET_FILE", str(secret))
    assert env_str("BG_SECRET") == "from-the-file"


def test_every_reader_honours_the_file_variant(monkeypatch, tmp_path):
    for name, content in (("BG_N", "42"), ("BG_B", "yes"), ("BG_L", "x,y")):
        path = tmp_path / name
        path.write_text(content)
        monkeypatch.setenv(f"{name}_FILE", str(path))
    assert env_int("BG_N", 0) == 42
    assert env_bool("BG_B") is True
    assert env_list("BG_L") == ["x", "y"]


def test_an_unreadable_file_variant_names_the_file_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("BG_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=r"^BG_SECRET_FILE: cannot read"):
        env_str("BG_SECRET")


def test_a_bad_value_in_a_file_variant_names_the_variable(monkeypatch, tmp_path):
    path = tmp_path / "n"
    path.write_text("many")
    monkeypatch.setenv("BG_N_FILE", str(path))
    with pytest.raises(ImproperlyConfigured, match=r"^BG_N: expected an integer"):
        env_int("BG_N", 1)


def test_a_postgres_url_becomes_a_database_entry():
    entry = database_from_url(
        "DATABASE_URL", "postgres://bg:p%40ss@db.internal:5433/bg?sslmode=require"
    )
    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"]) == ("bg", "bg", "p@ss")
    assert (entry["HOST"], entry["PORT"]) == ("db.internal", "5433")
    assert entry["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_urls_follow_the_three_and_four_slash_convention():
    assert (
        database_from_url("DATABASE_URL", "sqlite:///data/bg.sqlite3")["NAME"] == "data/bg.sqlite3"
    )
    assert (
        database_from_url("DATABASE_URL", "sqlite:////var/bg.sqlite3")["NAME"] == "/var/bg.sqlite3"
    )


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:hunter2@h/db", "unsupported scheme 'mysql'"),
        ("postgres://u:hunter2@h:5432/", "no database name"),
        ("postgres://u:hunter2@h:port/db", "port is not a number"),
    ],
)
def test_a_bad_database_url_is_explained_without_echoing_the_password(url, message):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        database_from_url("DATABASE_URL", url)
    assert str(excinfo.value).startswith("DATABASE_URL: ")
    assert message in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)


def test_a_key_encryption_key_must_be_32_bytes_of_base64():
    assert kek_problem("A" * 43) is None  # 32 bytes, unpadded
    assert kek_problem("") == "is empty"
    assert kek_problem("c2hvcnQ=") == "must decode to 32 bytes, got 5"
    assert kek_problem("not base64 at all!") == "is not URL-safe base64"


def _base_url_in_a_fresh_process(tmp_path, **env) -> str:
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("BREAKGLASS_BASE_URL",)}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.BREAKGLASS_BASE_URL)"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "breakglass.project.settings",
             "BREAKGLASS_DATA_DIR": str(tmp_path), **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_the_base_url_scripts_run_recorded_is_used_by_commands_run_by_hand(tmp_path):
    (tmp_path / "base-url").write_text("http://127.0.0.1:8765\n")
    assert _base_url_in_a_fresh_process(tmp_path) == "http://127.0.0.1:8765"
    explicit = _base_url_in_a_fresh_process(tmp_path, BREAKGLASS_BASE_URL="https://bg.example/")
    assert explicit == "https://bg.example"


def test_without_a_recorded_base_url_the_default_is_port_8000(tmp_path):
    assert _base_url_in_a_fresh_process(tmp_path) == "http://127.0.0.1:8000"

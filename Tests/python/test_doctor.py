"""`pinhole doctor`: every check prints its result, a failure prints its fix, and any failure exits 1."""
import os
import socket
import subprocess

import pytest

from conftest import BINARY, CORPUS, free_port

GOOD_KEY = "k7Yw2mVQ9cXh4LpR1sTz8uNe3bDf6gJa"


def doctor(tmp_path, *arguments, **settings):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PINHOLE_")}
    env.update({
        "PINHOLE_THUMBNAILS_SECURITY_KEYS": GOOD_KEY, "PINHOLE_FILES_SECRETS": GOOD_KEY[::-1],
        "PINHOLE_THUMBNAILS_FILE_ROOT": str(CORPUS), "PINHOLE_THUMBNAILS_CACHE_ROOT": str(tmp_path / "cache"),
        "PINHOLE_THUMBNAILS_SOURCE_CACHE_ROOT": str(tmp_path / "sources"), "PINHOLE_FILES_ROOT": str(tmp_path / "files"),
        "PINHOLE_THUMBNAILS_PORT": str(free_port()), "PINHOLE_FILES_PORT": str(free_port()),
    })
    env.update({key: value for key, value in settings.items() if value is not None})
    for key in [key for key, value in settings.items() if value is None]:
        env.pop(key, None)
    result = subprocess.run([BINARY, "doctor", *arguments], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout


def line(output, name):
    found = [text for text in output.splitlines() if text.split(":")[0].split()[-1:] == [name]]
    assert found, f"no line for {name}:\n{output}"
    return found[0]


def test_a_sound_deployment_passes(tmp_path):
    status, output = doctor(tmp_path)
    assert status == 0, output
    for name in ["configuration", "thumbnails.security_keys", "files.secrets", "thumbnails.cache_root", "files.root",
                 "ffmpeg", "thumbnails.port", "files.port"]:
        assert line(output, name).startswith("ok "), output
    assert "every loader present" in output and "JPEG XL" in output
    assert "writable" in line(output, "files.root") and "free" in line(output, "files.root")
    assert line(output, "clock").split()[0] in ("ok", "warn")
    assert output.rstrip().endswith("doctor: no failures")


@pytest.mark.parametrize("settings,name,words", [
    ({"PINHOLE_THUMBNAILS_SECURITY_KEYS": None}, "thumbnails.security_keys", "not set"),
    ({"PINHOLE_THUMBNAILS_SECURITY_KEYS": "MY_SECURE_KEY"}, "thumbnails.security_keys", "published example"),
    ({"PINHOLE_FILES_SECRETS": "short"}, "files.secrets", "guessable"),
])
def test_missing_or_development_keys_fail(tmp_path, settings, name, words):
    status, output = doctor(tmp_path, **settings)
    assert status == 1
    failing = line(output, name)
    assert failing.startswith("FAIL") and words in failing
    assert "fix:" in output.split(failing, 1)[1].splitlines()[1]


def test_unwritable_directory_fails(tmp_path):
    (tmp_path / "not-a-dir").write_text("a file where the store should be")
    status, output = doctor(tmp_path, PINHOLE_FILES_ROOT=str(tmp_path / "not-a-dir"))
    assert status == 1 and line(output, "files.root").startswith("FAIL")
    assert "not a directory" in line(output, "files.root")


def test_port_in_use_fails(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, output = doctor(tmp_path, PINHOLE_FILES_PORT=str(port))
        assert status == 1 and "in use" in line(output, "files.port")
        status, output = doctor(tmp_path, "--skip-ports", PINHOLE_FILES_PORT=str(port))
        assert status == 0, output


def test_bad_configuration_value_fails_naming_the_key(tmp_path):
    status, output = doctor(tmp_path, PINHOLE_THUMBNAILS_HEADER_TIMEOUT="soon")
    assert status == 1 and "thumbnails.header_timeout" in line(output, "configuration")


@pytest.mark.skipif(not os.path.exists("/usr/sbin/nginx"), reason="nginx is not installed")
def test_nginx_configuration_syntax(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}} http {{ access_log off; }}\n")
    status, output = doctor(tmp_path, "--nginx-config", str(good))
    assert status == 0 and "syntax ok" in line(output, "nginx"), output
    bad = tmp_path / "bad.conf"
    bad.write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}} http {{ proxy_pass_nope on; }}\n")
    status, output = doctor(tmp_path, "--nginx-config", str(bad))
    assert status == 1 and line(output, "nginx").startswith("FAIL") and "proxy_pass_nope" in line(output, "nginx")

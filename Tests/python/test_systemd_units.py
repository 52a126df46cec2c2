"""The shipped systemd units (config/systemd): `systemd-analyze verify` finds nothing to say about them,
they carry the hardening the README promises, leave the thumbnail unit's bubblewrap decoder sandbox
room to work, stop later than the shutdown grace, and their sysusers/tmpfiles files are valid.

What is verified is the shipped files byte for byte except one substitution: the ExecStart binary
/usr/local/bin/pinhole becomes the binary under test (conftest's BINARY), because `systemd-analyze
verify` refuses a unit whose ExecStart program does not exist, and nothing is installed on a test
machine."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY, REPO

SYSTEMD = REPO / "config" / "systemd"
UNITS = {"thumbnails": SYSTEMD / "pinhole-thumbnails.service", "files": SYSTEMD / "pinhole-files.service"}
INSTALLED_BINARY = "/usr/local/bin/pinhole"
DEFAULT_SHUTDOWN_GRACE = 30.0      # seconds (contract: thumbnails./files.shutdown_grace default)

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed (Debian package `systemd`)")


def parse_unit(path):
    """{section: {key: [values in order]}} of a unit file (comments, blank lines and continuations handled)."""
    sections, section, pending = {}, None, ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert section is not None, f"{path.name}: {line!r} outside a section"
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(span):
    """A systemd time span ("45s", "1min 30s", "90", "2.5s") in seconds."""
    units = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
             "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
    parts = re.findall(r"([0-9.]+)\s*([a-z]*)", span.strip())
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), f"unparsed time span {span!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def shutdown_grace():
    """The largest shutdown_grace the example configuration names (the embedded default when it names none)."""
    example = (REPO / "config" / "pinhole.example.yaml").read_text()
    values = [float(v) for v in re.findall(r"^\s*shutdown_grace:\s*([0-9.]+)", example, re.M)]
    return max(values + [DEFAULT_SHUTDOWN_GRACE])


def service(name):
    return parse_unit(UNITS[name])["Service"]


def last(directives, key):
    assert key in directives, f"{key}= missing"
    return directives[key][-1]


@needs_systemd_analyze
def test_systemd_analyze_verify_prints_nothing(tmp_path):
    assert Path(BINARY).is_file() and os.access(BINARY, os.X_OK), f"{BINARY} is not an executable: build Pinhole first"
    copies = []
    for path in UNITS.values():
        text = path.read_text()
        # The one substitution (see the module docstring): only ExecStart's program path.
        assert text.count(INSTALLED_BINARY) == 1, f"{path.name}: expected {INSTALLED_BINARY} exactly once (in ExecStart)"
        assert re.search(rf"^ExecStart={re.escape(INSTALLED_BINARY)} ", text, re.M), path.name
        copy = tmp_path / path.name
        copy.write_text(text.replace(INSTALLED_BINARY, str(Path(BINARY).resolve())))
        copies.append(str(copy))
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", LC_ALL="C")
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, env=env, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "", f"systemd-analyze verify (exit {result.returncode}):\n{output}"


@pytest.mark.parametrize("name", ["thumbnails", "files"])
def test_process_restart_and_stop(name):
    unit = parse_unit(UNITS[name])
    s = unit["Service"]
    command = last(s, "ExecStart").split()
    assert command[0] == INSTALLED_BINARY and command[1] == name, command
    assert command[command.index("--config") + 1] == "/etc/pinhole/pinhole.yaml", command
    assert last(s, "Type") in ("simple", "exec")
    assert last(s, "Restart") == "on-failure"
    assert seconds(last(s, "RestartSec")) > 0
    assert last(s, "User") == "pinhole" and last(s, "Group") == "pinhole"
    assert last(s, "KillSignal") == "SIGTERM"
    # Longer than the grace, or systemd SIGKILLs what the grace lets finish.
    assert seconds(last(s, "TimeoutStopSec")) > shutdown_grace()
    # The two units are independent: neither pulls in, binds to or stops with the other.
    other = "pinhole-files.service" if name == "thumbnails" else "pinhole-thumbnails.service"
    for key in ["Requires", "Requisite", "BindsTo", "PartOf", "Upholds", "Conflicts"]:
        for value in unit["Unit"].get(key, []) + s.get(key, []):
            assert other not in value.split(), f"{key}={value}"
    assert "multi-user.target" in last(unit["Install"], "WantedBy")


@pytest.mark.parametrize("name", ["thumbnails", "files"])
def test_hardening_directives(name):
    s = service(name)
    expected = {"NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                "PrivateDevices": "yes", "PrivateMounts": "yes", "ProtectKernelModules": "yes",
                "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "LockPersonality": "yes",
                "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
                "ProtectProc": "invisible"}
    for key, value in expected.items():
        assert last(s, key) == value, f"{key}={s.get(key)}"
    assert s.get("CapabilityBoundingSet") == [""], "no capabilities at all"
    assert re.fullmatch(r"[0-9]+[KMGT]?", last(s, "MemoryMax")), s["MemoryMax"]
    assert int(last(s, "LimitNOFILE")) > 1024 + 1024          # max_connections (default 1024) and files open
    families = set(" ".join(s["RestrictAddressFamilies"]).split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families and not any(f.startswith("~") for f in families)
    assert "@system-service" in " ".join(s["SystemCallFilter"]).split()
    # Every writable directory is a Pinhole directory under /var/lib/pinhole.
    paths = " ".join(s["ReadWritePaths"]).split()
    assert paths and all(p.lstrip("-").startswith("/var/lib/pinhole/") for p in paths), paths


def test_thumbnail_unit_leaves_bubblewrap_room():
    """The decode workers run under bubblewrap, which needs unprivileged user namespaces, a fresh /proc,
    mount system calls and a netlink socket (WorkerSandbox.swift): nothing in the unit may take them away."""
    s = service("thumbnails")
    assert s.get("RestrictNamespaces", ["no"])[-1] in ("no", "false", "off", "0")
    assert s.get("PrivateUsers", ["no"])[-1] in ("no", "false", "off", "0")
    for key in ["ProtectKernelTunables", "ProtectKernelLogs"]:        # mounts over /proc: no fresh proc in a userns
        assert s.get(key, ["no"])[-1] in ("no", "false", "off", "0"), key
    assert s.get("ProcSubset", ["all"])[-1] == "all"                  # bwrap reads /proc/sys/kernel/overflowuid
    assert "MemoryDenyWriteExecute" not in s or s["MemoryDenyWriteExecute"][-1] == "no"   # liborc
    assert "AF_NETLINK" in " ".join(s["RestrictAddressFamilies"]).split()               # bwrap's loopback setup
    assert "@mount" in " ".join(s["SystemCallFilter"]).split()                          # mount, pivot_root
    # In-flight renders (decode workers, FFmpeg) must not get SIGTERM with the main process.
    assert last(s, "KillMode") == "mixed"
    # The caches, and the removal journal it purges from and prunes: never the components themselves.
    assert set(" ".join(s["ReadWritePaths"]).split()) == {"/var/lib/pinhole/cache", "/var/lib/pinhole/sources",
                                                           "/var/lib/pinhole/files/.removals"}


def test_file_unit_is_tighter():
    s = service("files")
    for key in ["ProtectKernelTunables", "ProtectKernelLogs", "RestrictNamespaces", "PrivateUsers",
                "MemoryDenyWriteExecute"]:
        assert last(s, key) == "yes", key
    assert set(" ".join(s["RestrictAddressFamilies"]).split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "~@privileged" in s["SystemCallFilter"]
    assert "/var/lib/pinhole/files" in " ".join(s["ReadWritePaths"]).split()


@needs_systemd_analyze
def test_sysusers_and_tmpfiles_make_every_directory(tmp_path):
    """systemd-sysusers and systemd-tmpfiles accept the shipped files (run into a scratch root), and the
    directories they create are every ReadWritePaths= directory the units need (and the file loader's root)."""
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if sysusers is None or tmpfiles is None:
        pytest.skip("systemd-sysusers / systemd-tmpfiles are not installed (Debian package `systemd`)")
    root = tmp_path / "root"
    for folder, source in [("usr/lib/sysusers.d", "pinhole.sysusers.conf"), ("usr/lib/tmpfiles.d", "pinhole.tmpfiles.conf")]:
        (root / folder).mkdir(parents=True)
        shutil.copy(SYSTEMD / source, root / folder / "pinhole.conf")
    (root / "etc").mkdir()
    result = subprocess.run([sysusers, f"--root={root}", "pinhole.conf"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Failed" not in result.stderr, result.stderr
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^pinhole:x:\d+:\d+:[^:]*:/var/lib/pinhole:/usr/sbin/nologin$", passwd, re.M), passwd
    assert re.search(r"^pinhole:x:\d+:", (root / "etc" / "group").read_text(), re.M)
    declared = {line.split()[1] for line in (SYSTEMD / "pinhole.tmpfiles.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#") and line.split()[0] == "d"}
    needed = {p for name in UNITS for p in " ".join(service(name)["ReadWritePaths"]).split() if not p.startswith("-")}
    # ... and what `pinhole thumbnails` opens at start where it may not write: the file loader's root, the store's upload area.
    assert needed | {"/var/lib/pinhole/images", "/var/lib/pinhole/files/.incoming"} <= declared, needed - declared
    if os.geteuid() != 0:
        return                          # creating directories owned by pinhole needs root
    result = subprocess.run([tmpfiles, f"--root={root}", "--create", "pinhole.conf"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for path in declared:
        assert (root / path.lstrip("/")).is_dir(), path

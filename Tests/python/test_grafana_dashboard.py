"""The shipped Grafana dashboard (config/grafana/pinhole-dashboard.json): a well-formed dashboard whose
every PromQL expression names only metrics Pinhole exports. A real `pinhole serve` gets traffic that
touches every metric family (thumbnail miss, disk hit, memory hit, /meta, a refused long URL, a decoder
timeout and its remembered repeat, a render shed with 429, one past its deadline, an upload of a video
that is pre-warmed from the file server in ranges, its download, a CORS preflight, its removal) and
both ports' /metrics are scraped: every family the dashboard uses must appear there as a `# TYPE` line.
Families exported but not on the dashboard are printed, not failed."""
import json
import os
import re
import signal
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests
from libthumbor import CryptoURL

from conftest import BINARY, KEY, PHOTOS, REPO, PinholeServer

DASHBOARD = REPO / "config" / "grafana" / "pinhole-dashboard.json"
crypto = CryptoURL(key=KEY)

# The metric families of the contract (hardening.md, "Metrics") and their types.
CONTRACT = {
    "pinhole_http_request_duration_seconds": "histogram", "pinhole_http_responses_total": "counter",
    "pinhole_http_response_bytes_total": "counter", "pinhole_http_connections": "gauge",
    "pinhole_http_limit_closures_total": "counter",
    "pinhole_render_duration_seconds": "histogram", "pinhole_render_queue_depth": "gauge", "pinhole_render_pool_busy": "gauge",
    "pinhole_render_pool_threads": "gauge", "pinhole_decoder_workers": "gauge",
    "pinhole_files_uploads_total": "counter", "pinhole_files_upload_bytes_total": "counter",
    "pinhole_files_downloads_total": "counter", "pinhole_files_download_bytes_total": "counter",
    "pinhole_renders_total": "counter", "pinhole_cache_hits_total": "counter", "pinhole_cache_fast_path_hits_total": "counter",
    "pinhole_cache_misses_total": "counter", "pinhole_renders_rejected_total": "counter",
    "pinhole_deadlines_exceeded_total": "counter", "pinhole_source_fetches_total": "counter",
    "pinhole_ranged_source_bytes_total": "counter", "pinhole_decoder_failures_total": "counter",
    "pinhole_cache_degraded": "gauge", "pinhole_encode_queue_length": "gauge", "pinhole_encodes_total": "counter",
    "pinhole_encode_failures_total": "counter", "pinhole_encoded_media_seconds_total": "counter",
}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
                "inf", "nan"}


def load_dashboard():
    return json.loads(DASHBOARD.read_text())


def queries(dashboard):
    """(where, PromQL) of every panel target and every query variable."""
    found = []
    for panel in dashboard["panels"] + [p for row in dashboard["panels"] for p in row.get("panels", [])]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['id']} {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            definition = variable["definition"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", definition)
            found.append((f"variable {variable['name']}", inner.group(1) if inner else definition))
    return found


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords, label
    names (in matchers or in by/without/on/ignoring lists), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                     # string literals (label values)
    text = re.sub(r"\{[^}]*\}", " ", text)                               # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                              # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def family(name, types):
    """A series name's metric family: a histogram's _bucket/_sum/_count series belong to the histogram
    (only when the stripped name is a histogram or summary in `types`: a counter may end in _count)."""
    for suffix in HISTOGRAM_SERIES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def dashboard_families(types):
    return {family(name, types) for _, expr in queries(load_dashboard()) for name in metric_names(expr)}


def test_dashboard_structure():
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert [i["name"] for i in dashboard.get("__inputs", [])] in ([], ["DS_PROMETHEUS"])
    panels = dashboard["panels"] + [p for row in dashboard["panels"] for p in row.get("panels", [])]
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), "panel ids must be unique integers"
    occupied = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "hwxy") and grid["h"] > 0 and 0 < grid["w"] and grid["x"] + grid["w"] <= 24, panel
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"panel {panel['id']} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["id"]
        targets = panel["targets"]
        assert targets and len({t["refId"] for t in targets}) == len(targets), panel["id"]
        for target in targets:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${DS_PROMETHEUS}", (panel["id"], target)
            # Balanced brackets: a truncated expression would still be a string.
            for opening, closing in ["()", "{}", "[]"]:
                assert target["expr"].count(opening) == target["expr"].count(closing), target["expr"]
    assert sum(p["type"] == "row" for p in panels) >= 4 and sum(p["type"] != "row" for p in panels) >= 20


def test_dashboard_uses_only_contract_metrics():
    used = dashboard_families(CONTRACT)
    assert used <= set(CONTRACT), f"not in the contract: {sorted(used - set(CONTRACT))}"
    for where, expr in queries(load_dashboard()):
        for name in metric_names(expr):
            base = family(name, CONTRACT)
            # Histograms only through their series, and _bucket only under histogram_quantile by le.
            assert (CONTRACT[base] == "histogram") == (base != name), f"{where}: {name}"
            if name.endswith("_bucket"):
                assert "histogram_quantile(" in expr and re.search(r"by \([^)]*\ble\b", expr), f"{where}: {expr}"
    # The panels the brief asks for are there (every family of the contract but none left out by accident).
    assert used == set(CONTRACT), f"contract families the dashboard does not show: {sorted(set(CONTRACT) - used)}"


def test_metric_name_extraction():
    expr = ('histogram_quantile(0.95, sum by (le, format) (rate(pinhole_render_duration_seconds_bucket'
            '{job=~"$job", status="5xx"}[$__rate_interval]))) / on(instance) group_left sum(pinhole_renders_total offset 5m)'
            ' > bool 1e3')
    assert metric_names(expr) == {"pinhole_render_duration_seconds_bucket", "pinhole_renders_total"}
    assert family("pinhole_render_duration_seconds_bucket", CONTRACT) == "pinhole_render_duration_seconds"
    assert family("pinhole_things_count", {"pinhole_things": "counter"}) == "pinhole_things_count"


# --- against a running Pinhole

def decode_workers(server):
    """Process ids of the server's `pinhole decode-worker` processes (inside their sandbox)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (parent, argv)

    def descends(pid):
        for _ in range(64):
            if pid == server.process.pid:
                return True
            if pid not in table:
                return False
            pid = table[pid][0]
        return False
    return [pid for pid, (_, argv) in table.items() if len(argv) > 1 and argv[1] == b"decode-worker" and descends(pid)]


def wait_until(condition, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def exported_types(text):
    return dict(re.findall(r"^# TYPE (\S+) (\S+)\s*$", text, re.M))


def exported_labels(text, types):
    """{family: label names its series carry} (a histogram's `le` included)."""
    labels = {}
    for name, body in re.findall(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})? \S+", text, re.M):
        labels.setdefault(family(name, types), set()).update(re.findall(r'(\w+)="', body or ""))
    return labels


def labels_used(expr):
    """Label names an expression matches on or groups by (Prometheus' own job and instance aside)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        names.update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        names.update(n.strip() for n in grouping.split(",") if n.strip())
    return names - {"job", "instance"}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, origin):
    """Traffic through every metric family of a real `pinhole serve`, then both ports' /metrics."""
    root = tmp_path_factory.mktemp("dashboard")
    server = PinholeServer(
        result_cache="true", cache_root=str(root / "cache"), source_cache_root=str(root / "sources"),
        loader="file_then_http", allowed_hosts="127.0.0.1",
        render_queue="1", request_deadline="3",               # one render admitted: a second is shed (429)
        decoder_workers="1", decoder_timeout="2",             # a stopped worker times out after 2 s
        video_ranged_above="1",                                # videos over HTTP are read in ranges
        prewarm_sizes="fit-in/100x100",
        # The review encoder runs (its metrics are registered when it starts) but queues nothing: no FFmpeg
        # encode competes for the CPU or the render slot.
        env={"PINHOLE_FILES_ROOT": str(root / "files"), "PINHOLE_ENCODE_DIRECTORY": str(root / "review"),
             "PINHOLE_ENCODE_ENABLED": "false"})
    try:
        files_base = f"http://127.0.0.1:{server.files_port}"
        # Thumbnails: a miss, a hit from disk (which admits the entry to memory), a hit from memory (fast path), /meta.
        url = crypto.generate(width=160, height=100, image_url=PHOTOS[0])
        assert [server.get(url).headers.get("X-Pinhole-Cache") for _ in range(3)] == ["miss", "hit", "hit"]
        assert server.get(crypto.generate(width=160, height=100, meta=True, image_url=PHOTOS[0])).status_code == 200
        # A request target over max_url_bytes: refused (a limit closure).
        assert server.get("/" + "x" * 9000).status_code == 414
        # The file server: a video uploaded (pre-warmed at one size from the file server, read in ranges), a
        # CORS preflight, the download, the removal.
        component = str(uuid.uuid4())
        video = (Path(os.environ.get("PINHOLE_CORPUS", REPO.parent / "shared" / "corpus")) / "video-h264-640x400.mp4").read_bytes()
        put = requests.put(server.files_url("put", component), data=video, timeout=30,
                           headers={"Content-Type": "video/mp4", "Content-Disposition": 'attachment; filename="clip.mp4"'})
        assert put.status_code == 200, put.text
        preflight = requests.options(f"{files_base}/put", timeout=10,
                                     headers={"Origin": "https://ftrack.example", "Access-Control-Request-Method": "PUT"})
        assert preflight.status_code == 204
        assert requests.get(server.files_url("get", component), timeout=30).content == video
        metrics = lambda: requests.get(server.base + "/metrics", timeout=10).text
        assert wait_until(lambda: "pinhole_ranged_source_bytes_total" in metrics(), 20), "the pre-warm read no video in ranges"
        assert wait_until(lambda: "pre-warmed thumbnails" in server.logs(), 20), "no pre-warm after the upload"
        assert requests.get(server.files_url("remove", component), timeout=30).status_code == 200
        # The next steps need the only render slot free: a render abandoned at its deadline (the pre-warm,
        # on a loaded machine) keeps it until it ends.
        depth = lambda: re.search(r"^pinhole_render_queue_depth (\S+)", metrics(), re.M)
        slot_free = lambda: wait_until(lambda: depth() is None or float(depth().group(1)) == 0, 20)
        assert slot_free(), "the render slot stayed busy"
        # A decoder timeout (a stopped worker), then the same bytes refused at once (remembered).
        assert wait_until(lambda: len(decode_workers(server)) == 1), "no decode worker"
        [worker] = decode_workers(server)
        os.kill(worker, signal.SIGSTOP)
        try:
            psd = crypto.generate(width=120, height=80, image_url="vfx-1024x640.psd")
            # 400 "decoder timed out"; on a loaded machine replacing the worker may push the answer past
            # request_deadline (504), the failure is counted and remembered all the same.
            assert server.get(psd).status_code in (400, 504)
            assert slot_free(), "the render slot stayed busy"
            again = server.get(crypto.generate(width=121, height=80, image_url="vfx-1024x640.psd"))
            assert again.status_code == 400 and "earlier" in again.text, (again.status_code, again.text)
        finally:
            try:
                os.kill(worker, signal.SIGCONT)
            except ProcessLookupError:
                pass
        # A render past request_deadline (504) holding the only render slot, and one shed meanwhile (429).
        assert slot_free(), "the render slot stayed busy"
        slow = crypto.generate(width=100, height=100, image_url=f"http://{origin}/slow/4")
        outcome = {}
        stalled = threading.Thread(target=lambda: outcome.setdefault("slow", server.get(slow)))
        stalled.start()
        time.sleep(0.5)
        shed = server.get(crypto.generate(width=150, height=90, image_url=PHOTOS[1]))
        stalled.join(30)
        assert outcome["slow"].status_code == 504 and shed.status_code == 429, (outcome["slow"].status_code, shed.status_code)
        texts = {}
        for name, base in [("thumbnails", server.base), ("files", files_base)]:
            response = requests.get(base + "/metrics", timeout=10)
            texts[name] = (response.status_code, response.text)
        yield texts
    finally:
        server.stop()


def test_both_ports_export_metrics(scraped):
    for port, (status, text) in scraped.items():
        assert status == 200 and "# TYPE pinhole_" in text, f"/metrics on the {port} port: {status}"


def test_every_dashboard_metric_is_exported(scraped):
    types = {}
    for _, text in scraped.values():
        types.update(exported_types(text))
    # Series names resolve to families by what /metrics says, else (a family not exported) by the contract.
    used = dashboard_families({**CONTRACT, **types})
    missing = sorted(name for name in used if name not in types)
    unused = sorted(name for name in types if name.startswith("pinhole_") and name not in used)
    print(f"\nexported pinhole_ families the dashboard does not use: {unused or 'none'}")
    assert not missing, f"the dashboard uses families /metrics does not export: {missing}"
    for name in used:
        if name in CONTRACT:
            assert types[name] == CONTRACT[name], f"{name}: exported as {types[name]}, the contract says {CONTRACT[name]}"


def test_every_label_the_dashboard_uses_is_exported(scraped):
    """A `by (route)` or `{service="files"}` on a family without that label would show nothing or one lumped line."""
    types, labels = {}, {}
    for _, text in scraped.values():
        types.update(exported_types(text))
    for _, text in scraped.values():
        for name, found in exported_labels(text, {**CONTRACT, **types}).items():
            labels.setdefault(name, set()).update(found)
    for where, expr in queries(load_dashboard()):
        families = {family(name, {**CONTRACT, **types}) for name in metric_names(expr)}
        available = set().union(*(labels.get(name, set()) for name in families))
        assert labels_used(expr) <= available, f"{where}: {sorted(labels_used(expr) - available)} not on {sorted(families)}"

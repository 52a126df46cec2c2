#!/usr/bin/env bash
# The throughput benchmark: `benchmarks/load/run.sh [seconds per run, default 10] [--hits-only | --soak-only]`.
# Builds a release Pinhole, starts it, real Thumbor 7.8.0 (one process per core), nginx, and runs the
# in-process pyvips reference, all on loopback in one run; prints req/s, p50/p99, peak RSS, output
# bytes and the ratios; stops everything after.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps --python
.venv/bin/python -c 'import pyvips' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check pyvips
swift build -c release --product pinhole >/dev/null
PINHOLE_RELEASE="$(swift build -c release --show-bin-path)/pinhole" exec .venv/bin/python benchmarks/load/run.py "$@"

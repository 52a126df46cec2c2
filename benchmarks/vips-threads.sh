#!/usr/bin/env bash
# libvips threads per image: 1 (Pinhole's default) against libvips' default (one per core), measured
# with wrk against a release `pinhole serve` on fit-in/512x512 of the eight 2560x1600 photos.
# Usage: benchmarks/vips-threads.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
corpus="${PINHOLE_CORPUS:-$(cd .. && pwd)/shared/corpus}"
scripts/install-deps
swift build -c release --product pinhole >/dev/null
bin="$(swift build -c release --show-bin-path)/pinhole"
key=bench-key
port=18888
script=$(mktemp --suffix=.lua)
server=""
trap 'rm -f "$script"; [ -n "$server" ] && kill "$server" 2>/dev/null; true' EXIT
{
  echo "local paths = {"
  for photo in "$corpus"/photo-*-2560x1600.jpg; do
    echo "  \"$("$bin" sign --key "$key" --fit-in -w 512 -e 512 "$(basename "$photo")")\","
  done
  echo "}"
  echo 'local i = 0'
  echo 'request = function() i = i + 1; return wrk.format("GET", paths[(i % #paths) + 1]) end'
} > "$script"

run() {
  local threads=$1 connections=$2
  PINHOLE_THUMBNAILS_PORT=$port PINHOLE_THUMBNAILS_SECURITY_KEYS=$key PINHOLE_THUMBNAILS_LOADER=file \
  PINHOLE_THUMBNAILS_FILE_ROOT="$corpus" PINHOLE_THUMBNAILS_VIPS_CONCURRENCY=$threads \
  PINHOLE_THUMBNAILS_RESULT_CACHE=false PINHOLE_THUMBNAILS_COALESCE=false PINHOLE_FILES_PORT=$((port + 1)) \
  "$bin" serve --log-level error >/dev/null &
  server=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break; sleep 0.1; done
  wrk -t2 -c"$connections" -d2s -s "$script" "http://127.0.0.1:$port" >/dev/null   # warm-up
  local out; out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$script" "http://127.0.0.1:$port")
  local rps p50 p99 rss
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  rss=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  kill $server; wait $server 2>/dev/null || true
  printf "vips_concurrency=%-2s c=%-2s  %8s req/s  p50 %8s  p99 %8s  peak RSS %6d MB\n" "$threads" "$connections" "$rps" "$p50" "$p99" $((rss / 1024))
  echo "$rps"
}

echo "fit-in/512x512 over 8 photos, ${seconds}s per run, $(nproc) cores"
one2=$(run 1 2 | tee /dev/stderr | tail -1); def2=$(run 0 2 | tee /dev/stderr | tail -1)
one8=$(run 1 8 | tee /dev/stderr | tail -1); def8=$(run 0 8 | tee /dev/stderr | tail -1)
echo "ratio (1 thread / libvips default): c=2 $(echo "scale=2; $one2/$def2" | bc)  c=8 $(echo "scale=2; $one8/$def8" | bc)"

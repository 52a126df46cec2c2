#!/usr/bin/env bash
# File-server throughput over loopback: upload and download of a 1 GiB file to a release
# `pinhole files`, against nginx serving (and, with WebDAV PUT, receiving) the same file from the
# same disk in the same run. Prints MB/s and the ratios (goal: >= 0.7 of nginx).
# Usage: benchmarks/files-throughput.sh [size in MiB, default 1024] [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
runs="${2:-3}"
scripts/install-deps
swift build -c release --product pinhole >/dev/null
bin="$(swift build -c release --show-bin-path)/pinhole"
work=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-bench-XXXXXX")
chmod 755 "$work"
pinhole_pid=""; nginx_pid=""
cleanup() { [ -n "$pinhole_pid" ] && kill "$pinhole_pid" 2>/dev/null; [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"; true; }
trap cleanup EXIT

secret=bench-secret
pinhole_port=19400; nginx_port=19401
mkdir -p "$work/files" "$work/static" "$work/dav"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/static/blob.bin"
bytes=$(stat -c %s "$work/static/blob.bin")

PINHOLE_FILES_PORT=$pinhole_port PINHOLE_FILES_SECRETS=$secret PINHOLE_FILES_ROOT="$work/files" \
  PINHOLE_FILES_MAX_UPLOAD_BYTES=$((bytes * 2)) "$bin" files --log-level error >/dev/null &
pinhole_pid=$!
cat > "$work/nginx.conf" <<NGINX
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log error;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx-body;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$nginx_port;
        location /static/ { alias $work/static/; }
        location /dav/ { alias $work/dav/; dav_methods PUT; create_full_put_path on; }
    }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for port in $pinhole_port $nginx_port; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

id=3f2504e0-4f89-11d3-9a0c-0305e82c3301
signature=$(python3 -c "import base64,hmac,hashlib,sys; print(base64.urlsafe_b64encode(hmac.new(b'$secret', b'id=$id', hashlib.sha256).digest()).decode())")
query="id=$id&signature=$signature"

# Best of $runs: curl reports bytes per second.
best() { sort -n | tail -1; }
speed() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
upload_pinhole=$(for _ in $(seq "$runs"); do curl -s -o /dev/null -w '%{speed_upload}\n' -T "$work/static/blob.bin" "http://127.0.0.1:$pinhole_port/put?$query"; done | best)
upload_nginx=$(for _ in $(seq "$runs"); do curl -s -o /dev/null -w '%{speed_upload}\n' -T "$work/static/blob.bin" "http://127.0.0.1:$nginx_port/dav/blob.bin"; done | best)
download_pinhole=$(for _ in $(seq "$runs"); do curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$pinhole_port/get?$query"; done | best)
download_nginx=$(for _ in $(seq "$runs"); do curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$nginx_port/static/blob.bin"; done | best)
check=$(curl -s "http://127.0.0.1:$pinhole_port/get?$query" | md5sum | cut -d' ' -f1)
[ "$check" = "$(md5sum < "$work/static/blob.bin" | cut -d' ' -f1)" ] || { echo "download does not match the upload" >&2; exit 1; }

echo "file server throughput, $size_mib MiB over loopback, best of $runs, $(nproc) cores"
printf "upload:   pinhole %6s MB/s   nginx (WebDAV PUT) %6s MB/s   ratio %s\n" "$(speed "$upload_pinhole")" "$(speed "$upload_nginx")" \
  "$(awk -v a="$upload_pinhole" -v b="$upload_nginx" 'BEGIN { printf "%.2f", a / b }')"
printf "download: pinhole %6s MB/s   nginx (static)     %6s MB/s   ratio %s\n" "$(speed "$download_pinhole")" "$(speed "$download_nginx")" \
  "$(awk -v a="$download_pinhole" -v b="$download_nginx" 'BEGIN { printf "%.2f", a / b }')"

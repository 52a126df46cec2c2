#!/usr/bin/env bash
# Fuzzing and sanitizer runs of Pinhole's C (Sources/CVipsShim): libFuzzer targets for the progressive-DC
# JPEG decoder and the Lanczos resampler, and an ASan + UBSan driver over the corpus and mutated images.
#
#   run.sh short SECONDS   build, then run each libFuzzer target for SECONDS on a copy of its seed corpus
#   run.sh long            build, then run each target for 1,000,000 executions
#   run.sh sanitize [N]    build the ASan + UBSan driver, run it over the corpus and N mutated images (10000)
#   run.sh build           build only
#   run.sh repro TARGET FILE...   run a target (progressive_dc | resample) on saved inputs
#
# Environment: FUZZ_BUILD (build and run directory, /tmp/pinhole-fuzz-c), PINHOLE_CORPUS (../shared/corpus
# beside the repository), FUZZ_CC (a clang with libFuzzer, ASan and UBSan; default: the Swift toolchain's),
# PINHOLE_SHIM_DIR (the C sources to fuzz, Sources/CVipsShim; point it at a patched copy to try a fix).
# Fuzzers and the driver run under `nice -n 15`, one process at a time. Exit status: non-zero on any crash,
# sanitizer report or failed build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
shim=${PINHOLE_SHIM_DIR:-$repo/Sources/CVipsShim}
seeds=$repo/Tests/Fuzz/corpus
corpus=${PINHOLE_CORPUS:-$repo/../shared/corpus}
build=${FUZZ_BUILD:-/tmp/pinhole-fuzz-c}
targets=(progressive_dc resample)

usage() { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

find_cc() {
  if [ -n "${FUZZ_CC:-}" ]; then echo "$FUZZ_CC"; return; fi
  if [ -x /opt/swift/usr/bin/clang ]; then echo /opt/swift/usr/bin/clang; return; fi
  local swift
  if swift=$(command -v swift 2>/dev/null); then
    swift=$(readlink -f "$swift")
    if [ -x "$(dirname "$swift")/clang" ]; then echo "$(dirname "$swift")/clang"; return; fi
  fi
  command -v clang 2>/dev/null || { echo "run.sh: no clang found (set FUZZ_CC)" >&2; exit 2; }
}

cc=$(find_cc)
symbolizer=$(dirname "$cc")/llvm-symbolizer
[ -x "$symbolizer" ] || symbolizer=$(command -v llvm-symbolizer 2>/dev/null || true)

# Sanitizer settings. Fuzzers: an allocation over 512 MB fails (returns NULL) as in a memory-limited
# process, leaks are reported. Driver: 2 GB per allocation, malloc fails past 2 GB of RSS and the worker
# dies past 3 GB; leaks are not checked (the driver runs many inputs per process). Any report is fatal
# and prints a symbolised stack.
common_asan="abort_on_error=1:symbolize=1:print_summary=1:allocator_may_return_null=1:detect_stack_use_after_return=1"
fuzz_asan="$common_asan:max_allocation_size_mb=512:detect_leaks=1"
driver_asan="$common_asan:max_allocation_size_mb=2048:soft_rss_limit_mb=2048:hard_rss_limit_mb=3072:detect_leaks=0"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:symbolize=1:print_summary=1"
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer" UBSAN_SYMBOLIZER_PATH="$symbolizer"
export G_SLICE=always-malloc   # GLib's slice allocator would hide heap errors from ASan
export VIPS_WARNING=0

check_deps() {
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  pkg-config --exists vips 2>/dev/null || missing+=(libvips-dev)
  pkg-config --exists libturbojpeg 2>/dev/null || missing+=(libturbojpeg0-dev)
  [ -f /usr/include/jpeglib.h ] || [ -f /usr/include/x86_64-linux-gnu/jpeglib.h ] || missing+=(libjpeg-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: missing ${missing[*]} (scripts/install-deps installs them)" >&2
    exit 2
  fi
  for f in cvips_shim.c lanczos_resample.c progressive_dc.c include/cvips_shim.h; do
    [ -f "$shim/$f" ] || { echo "run.sh: $shim/$f not found" >&2; exit 2; }
  done
}

compile() {   # compile OUT FLAGS... SOURCES...
  local out=$1; shift
  if ! "$cc" "$@" -o "$out" 2>"$out.build.log"; then
    cat "$out.build.log" >&2
    echo "run.sh: building $(basename "$out") failed (compiler: $cc)" >&2
    exit 2
  fi
}

build_all() {
  check_deps
  mkdir -p "$build/obj"
  local base=(-g -O2 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
              -I"$shim/include" $(pkg-config --cflags vips libturbojpeg))
  local libs=($(pkg-config --libs vips libturbojpeg) -ljpeg -lm)
  local ld=()
  if echo 'int main(void){return 0;}' | "$cc" -x c - -fuse-ld=lld -o "$build/obj/ldcheck" 2>/dev/null; then ld=(-fuse-ld=lld); fi
  if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
       "$cc" -x c - -fsanitize=fuzzer,address,undefined "${ld[@]}" -o "$build/obj/fuzzcheck" 2>"$build/obj/fuzzcheck.log"; then
    cat "$build/obj/fuzzcheck.log" >&2
    echo "run.sh: $cc cannot build libFuzzer targets with ASan and UBSan (set FUZZ_CC to a clang that can)" >&2
    exit 2
  fi
  local src
  echo "run.sh: building into $build ($("$cc" --version | head -1))" >&2
  # progressive_dc: full coverage instrumentation, comparisons traced (markers, lengths, table indexes).
  for src in cvips_shim lanczos_resample progressive_dc; do
    compile "$build/obj/$src.dc.o" "${base[@]}" -fsanitize=fuzzer-no-link -c "$shim/$src.c"
  done
  compile "$build/fuzz_progressive_dc" "${base[@]}" "${ld[@]}" -fsanitize=fuzzer "$here/fuzz_progressive_dc.c" \
    "$build"/obj/{cvips_shim,lanczos_resample,progressive_dc}.dc.o "${libs[@]}"
  # resample: the pixel loops' comparisons are not traced (they cost most of the time and guide nothing:
  # the parameters are drawn from the input directly).
  for src in cvips_shim progressive_dc; do cp "$build/obj/$src.dc.o" "$build/obj/$src.rs.o"; done
  compile "$build/obj/lanczos_resample.rs.o" "${base[@]}" -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp \
    -c "$shim/lanczos_resample.c"
  compile "$build/fuzz_resample" "${base[@]}" "${ld[@]}" -fsanitize=fuzzer -fno-sanitize-coverage=trace-cmp \
    "$here/fuzz_resample.c" "$build"/obj/{cvips_shim,lanczos_resample,progressive_dc}.rs.o "${libs[@]}"
  # The driver: ASan + UBSan, no fuzzing instrumentation.
  compile "$build/sanitize_driver" "${base[@]}" "${ld[@]}" "$here/sanitize_driver.c" \
    "$shim/cvips_shim.c" "$shim/lanczos_resample.c" "$shim/progressive_dc.c" "${libs[@]}"
}

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

# run_fuzzer TARGET LIBFUZZER-LIMIT-FLAG: on a fresh copy of the seed corpus; prints one line of numbers.
run_fuzzer() {
  local name=$1 limit=$2
  local dir="$build/run/$name"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$seeds/$name"/* "$dir/corpus/" 2>/dev/null || true
  local start end status=0
  start=$(date +%s.%N)
  ASAN_OPTIONS="$fuzz_asan" nice -n 15 "$build/fuzz_$name" "$limit" -print_final_stats=1 -timeout=60 \
    -rss_limit_mb=2560 -malloc_limit_mb=2048 -error_exitcode=77 -timeout_exitcode=78 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/fuzz.log" 2>&1 || status=$?
  end=$(date +%s.%N)
  local runs rate seconds
  runs=$(stat_of number_of_executed_units "$dir/fuzz.log")
  rate=$(stat_of average_exec_per_sec "$dir/fuzz.log")
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  printf '%-16s executions %-10s time %7s s   exec/s %-8s corpus %s files\n' "$name" "${runs:-?}" "$seconds" "${rate:-?}" \
    "$(ls "$dir/corpus" | wc -l)"
  local artifacts
  artifacts=$(ls "$dir/artifacts" 2>/dev/null || true)
  if [ "$status" -ne 0 ] || [ -n "$artifacts" ]; then
    echo "run.sh: $name FAILED (exit status $status); log $dir/fuzz.log" >&2
    grep -E "ERROR:|runtime error|SUMMARY|^(oracle|constant|accepted|refusal|wrong|cannot)|Test unit written" "$dir/fuzz.log" | head -20 >&2 || true
    return 1
  fi
}

fuzz() {
  local flag=$1 failed=0
  build_all
  for t in "${targets[@]}"; do run_fuzzer "$t" "$flag" || failed=1; done
  return $failed
}

mode=${1:-}
case "$mode" in
  short)
    [ $# -eq 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
    fuzz "-max_total_time=$2"
    ;;
  long)
    fuzz "-runs=1000000"
    ;;
  sanitize)
    n=${2:-10000}
    [[ $n =~ ^[0-9]+$ ]] || usage
    [ -d "$corpus" ] || { echo "run.sh: no corpus at $corpus (set PINHOLE_CORPUS)" >&2; exit 2; }
    build_all
    rm -rf "$build/sanitize"
    mkdir -p "$build/sanitize/tmp"
    TMPDIR="$build/sanitize/tmp" ASAN_OPTIONS="$driver_asan" nice -n 15 "$build/sanitize_driver" --mutations "$n" \
      --work "$build/sanitize" --findings "$build/sanitize/findings" "$corpus"
    ;;
  build)
    build_all
    ;;
  repro)
    [ $# -ge 3 ] || usage
    t=$2; shift 2
    build_all
    ASAN_OPTIONS="$fuzz_asan" "$build/fuzz_$t" -runs=1 "$@"
    ;;
  *)
    usage
    ;;
esac

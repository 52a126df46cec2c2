#!/usr/bin/env bash
# libFuzzer targets for Pinhole's Swift parsers (issue 15), built without a sanitized SwiftPM build:
# only our files under test and a harness are compiled, with `swiftc -sanitize=fuzzer,address`, so
# coverage guides the fuzzer through them; their dependencies (swift-crypto, swift-configuration,
# Yams, swift-http-types, ...) are the uninstrumented objects and modules of the debug build.
#
#   run.sh build          build the four fuzzers into $FUZZ_BUILD (default /tmp/pinhole-fuzz-swift)
#   run.sh short SECONDS  build if needed; run each target SECONDS on a copy of its seed corpus
#   run.sh long           build if needed; run each target for 1,000,000 executions
#   run.sh TARGET ARGS... run one fuzzer with libFuzzer arguments (e.g. a crash file to reproduce it)
#
# Targets: thumbor_url, jsonp, file_request, yaml_config (FUZZ_TARGETS="a b" selects some). Seed corpora:
# Tests/Fuzz/corpus/<target>/. Needs `swift build --build-tests` (.build/debug) first, and python3.
# FUZZ_SOURCES=/some/Sources fuzzes another tree (e.g. one with a proposed fix applied).
# Fuzzers run one at a time under `nice -n 15`; a crash (Swift trap, sanitizer report, failed oracle,
# timeout) leaves its input in $FUZZ_BUILD/run/<target>/artifacts/ and makes the script exit 1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
SOURCES="${FUZZ_SOURCES:-$ROOT/Sources}"
BUILD="${FUZZ_BUILD:-/tmp/pinhole-fuzz-swift}"
DEBUG="$ROOT/.build/debug"
CORPUS="$ROOT/Tests/Fuzz/corpus"
SWIFTC="${SWIFTC:-swiftc}"
read -r -a TARGETS <<< "${FUZZ_TARGETS:-thumbor_url jsonp file_request yaml_config}"

# Our targets are compiled from source here, never taken from the debug build.
OWN_MODULES="ThumborURL ServiceSupport FileServer ThumbnailService ReviewEncoding ObjectStorage Imaging Vips pinhole"

die() { echo "run.sh: $*" >&2; exit 2; }

# The files each fuzzer is compiled from (run.sh rebuilds when one is newer than the binary).
sources_of() {
    case "$1" in
        thumbor_url) echo "$SOURCES"/ThumborURL/*.swift "$HERE/ThumborURLFuzz.swift" ;;
        jsonp) echo "$SOURCES/ThumbnailService/JSONPCallback.swift" "$HERE/JSONPFuzz.swift" ;;
        file_request)
            local f
            for f in QueryParameters ByteRange ContentDisposition ComponentID RequestSignature FileServerError; do
                echo "$SOURCES/FileServer/$f.swift"
            done
            echo "$SOURCES/FileServer/FileServerConfiguration.swift" "$SOURCES/ServiceSupport/HTTPDate.swift" "$HERE/FileRequestFuzz.swift" ;;
        yaml_config)
            echo "$SOURCES"/ServiceSupport/*.swift "$SOURCES/pinhole/ClusterConfiguration.swift" \
                "$SOURCES/ReviewEncoding/EncodeConfiguration.swift" "$SOURCES/ThumbnailService/JSONPCallback.swift" \
                "$HERE/YAMLConfigFuzz.swift"
            # Optional: the CIDR parser behind thumbnails.allowed_networks, where the tree has it.
            [[ ! -f "$SOURCES/ThumbnailService/Loaders/SourceAddress.swift" ]] || echo "$SOURCES/ThumbnailService/Loaders/SourceAddress.swift" ;;
        *) die "unknown target $1" ;;
    esac
}

# Keys read by a configuration init(reader:) (`r.int("port"` ...), to notice when the yaml_config mirror drifts.
config_keys() { grep -ho 'r\.[a-z]*("[a-z0-9_]*"' "$@" | sort -u; }

build() {
    local description="$DEBUG/description.json"
    [[ -f "$description" ]] || die "$description is missing: run \`swift build --build-tests -Xswiftc -gnone -Xcc -g0\` first"
    command -v "$SWIFTC" >/dev/null || die "swiftc not found on PATH"
    local started=$SECONDS
    mkdir -p "$BUILD"/{bin,gen,obj,logs,modules,module-cache}
    rm -rf "$BUILD/prebuilt-modules"; mkdir -p "$BUILD/prebuilt-modules"
    local module name
    for module in "$DEBUG"/Modules/*.swiftmodule; do
        name="$(basename "$module" .swiftmodule)"
        [[ " $OWN_MODULES " == *" $name "* ]] || ln -s "$module" "$BUILD/prebuilt-modules/"
    done

    local -a cc crypto http configuration common
    mapfile -t cc < <(python3 "$HERE/deps.py" "$description" ccflags ThumborURL ServiceSupport)
    mapfile -t crypto < <(python3 "$HERE/deps.py" "$description" objects ThumborURL)
    mapfile -t http < <(python3 "$HERE/deps.py" "$description" objects +HTTPTypes)
    mapfile -t configuration < <(python3 "$HERE/deps.py" "$description" objects ServiceSupport)
    common=(-sanitize=fuzzer,address -parse-as-library -swift-version 6 -gnone -use-ld=lld -lstdc++
            -module-cache-path "$BUILD/module-cache" -I "$BUILD/modules" -I "$BUILD/prebuilt-modules" "${cc[@]}")

    # SignatureMessage is declared in FileServerConfiguration.swift, whose other half needs the stores.
    awk '/^public enum SignatureMessage/ { on = 1 } on { print } on && /^}/ { exit }' \
        "$SOURCES/FileServer/FileServerConfiguration.swift" > "$BUILD/gen/SignatureMessage.swift"
    grep -q 'case canonical' "$BUILD/gen/SignatureMessage.swift" || die "cannot find enum SignatureMessage in FileServerConfiguration.swift"

    # EncodeConfiguration needs RenditionPlan.largerHeights; the rest of RenditionPlan.swift needs the encoder.
    { echo 'enum RenditionPlan {'; grep -m1 'static let largerHeights' "$SOURCES/ReviewEncoding/RenditionPlan.swift"; echo '}'; } \
        > "$BUILD/gen/RenditionPlan.swift"
    grep -q largerHeights "$BUILD/gen/RenditionPlan.swift" || die "cannot find RenditionPlan.largerHeights in RenditionPlan.swift"
    local -a yaml_defines=()
    [[ ! -f "$SOURCES/ThumbnailService/Loaders/SourceAddress.swift" ]] || yaml_defines+=(-D PINHOLE_ADDRESS_RANGE)
    ! grep -qs 'init(reader: ConfigReader)' "$SOURCES/ServiceSupport/LogConfiguration.swift" || yaml_defines+=(-D PINHOLE_LOG_CONFIGURATION)

    # The yaml_config dictionary: section and key names as the services read them.
    {
        echo '# generated by run.sh from the configuration readers'
        printf '"%s"\n' "thumbnails:" "files:" "encode:" "cluster:" ": " "  " "- " "[" "]" "{" "}" "," '\"' "'" "&a " "*a" "<<: " "!!str " "~" "null" "true" "false" "yes" "off" ".inf" ".nan" "0x" "0o" "1e308" "-" "9223372036854775807" "9223372036854775808" "2147483648" "#"
        grep -ho 'r\.[a-z]*("[a-z0-9_]*"' "$SOURCES/ThumbnailService/ServiceConfiguration.swift" "$SOURCES/FileServer/FileServerConfiguration.swift" \
            "$SOURCES/ReviewEncoding/EncodeConfiguration.swift" "$SOURCES/pinhole/ClusterConfiguration.swift" \
            "$SOURCES"/ServiceSupport/*.swift | sed 's/.*("\(.*\)"/"\1: "/' | sort -u
    } > "$BUILD/gen/yaml_config.dict"
    local drift
    drift="$(diff <(config_keys "$SOURCES/ThumbnailService/ServiceConfiguration.swift" "$SOURCES/FileServer/FileServerConfiguration.swift") \
                  <(config_keys "$HERE/YAMLConfigFuzz.swift") || true)"
    [[ -z "$drift" ]] || printf 'run.sh: warning: YAMLConfigFuzz.swift no longer mirrors the keys read by ServiceConfiguration/FileServerConfiguration:\n%s\n' "$drift" >&2

    # -O for thumbor_url and file_request (about x1.5 executions per second for about 15 s more CPU at build),
    # -Onone for jsonp (trivial) and yaml_config (the time goes to prebuilt Yams anyway). FUZZ_OPT overrides both.
    local fast="${FUZZ_OPT:--O}" quick="${FUZZ_OPT:--Onone}"
    local -a pids=() names=()
    compile() {   # compile TARGET SWIFTC-ARGS...: in the background, output in logs/TARGET.log
        local target="$1"; shift
        ( "$@" > "$BUILD/logs/$target.log" 2>&1 ) &
        pids+=($!); names+=("$target")
    }
    local -a wanted=("${TARGETS[@]}")
    local t
    for t in "${wanted[@]}"; do
        case "$t" in
            thumbor_url)
                # shellcheck disable=SC2046
                compile thumbor_url "$SWIFTC" "${common[@]}" "$fast" -module-name ThumborURLFuzz $(sources_of thumbor_url) \
                    "${crypto[@]}" -o "$BUILD/bin/thumbor_url" ;;
            jsonp)
                # shellcheck disable=SC2046
                compile jsonp "$SWIFTC" "${common[@]}" "$quick" -module-name JSONPFuzz $(sources_of jsonp) -o "$BUILD/bin/jsonp" ;;
            file_request)
                # shellcheck disable=SC2046
                compile file_request "$SWIFTC" "${common[@]}" "$fast" -module-name FileRequestFuzz \
                    $(sources_of file_request | tr ' ' '\n' | grep -v FileServerConfiguration.swift) "$BUILD/gen/SignatureMessage.swift" \
                    "${crypto[@]}" "${http[@]}" -o "$BUILD/bin/file_request" ;;
            yaml_config)
                # ServiceSupport from source as its own (instrumented) module, then the harness importing it.
                compile yaml_config bash -c '
                    set -e
                    swiftc="$1"; build="$2"; shift 2
                    n=0; for a in "$@"; do [[ "$a" == "--" ]] && break; n=$((n + 1)); done
                    common=("${@:1:$n}"); rest=("${@:$((n + 2))}")
                    support=(); others=()
                    for a in "${rest[@]}"; do
                        case "$a" in */ServiceSupport/*.swift) support+=("$a") ;; *) others+=("$a") ;; esac
                    done
                    "$swiftc" "${common[@]}" -module-name ServiceSupport -wmo -emit-module \
                        -emit-module-path "$build/modules/ServiceSupport.swiftmodule" -c "${support[@]}" -o "$build/obj/ServiceSupport.o"
                    "$swiftc" "${common[@]}" -module-name YAMLConfigFuzz "${others[@]}" "$build/obj/ServiceSupport.o" -o "$build/bin/yaml_config"
                ' build-yaml "$SWIFTC" "$BUILD" "${common[@]}" "$quick" -- $(sources_of yaml_config) "$BUILD/gen/RenditionPlan.swift" \
                    "${yaml_defines[@]}" "${configuration[@]}" ;;
            *) die "unknown target $t" ;;
        esac
    done
    local i failed=0
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            echo "run.sh: building ${names[$i]} failed:" >&2
            grep -v "Cannot export local symbol" "$BUILD/logs/${names[$i]}.log" | tail -40 >&2
            failed=1
        fi
    done
    ((failed == 0)) || exit 1
    echo "built ${wanted[*]} into $BUILD/bin in $((SECONDS - started)) s"
}

# Rebuild when a fuzzer is missing or older than one of its sources, the harness script or the debug build.
build_if_needed() {
    local t stale=0
    for t in "${TARGETS[@]}"; do
        local binary="$BUILD/bin/$t"
        if [[ ! -x "$binary" ]]; then stale=1; break; fi
        # shellcheck disable=SC2046
        if [[ -n "$(find $(sources_of "$t") "$HERE/run.sh" "$HERE/deps.py" "$DEBUG/description.json" -newer "$binary" 2>/dev/null)" ]]; then
            stale=1; break
        fi
    done
    ((stale == 0)) || build
}

fuzzer_options() {   # per-target libFuzzer options
    case "$1" in
        thumbor_url) echo "-dict=$HERE/dict/thumbor_url.dict -max_len=4096" ;;
        jsonp) echo "-max_len=512" ;;
        file_request) echo "-dict=$HERE/dict/file_request.dict -max_len=2048" ;;
        yaml_config) echo "-dict=$BUILD/gen/yaml_config.dict -max_len=8192" ;;
    esac
}

# run_target TARGET LIBFUZZER-OPTION...: one fuzzer on a fresh copy of its seed corpus; prints a summary line.
run_target() {
    local target="$1"; shift
    local work="$BUILD/run/$target"
    rm -rf "$work"; mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
    cp "$CORPUS/$target"/* "$work/corpus/"
    local -a options
    read -r -a options <<< "$(fuzzer_options "$target")"
    local started ended rc=0
    started=$(date +%s.%N)
    # Swift's backtracer and ASan's leak checker both misbehave under libFuzzer + ASan (the backtracer
    # trips ASan reading the stack; the runtime's caches look like leaks): both off.
    SWIFT_BACKTRACE=enable=no \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:malloc_context_size=5:quarantine_size_mb=32}" \
    TMPDIR="$work/tmp" \
        nice -n 15 "$BUILD/bin/$target" -print_final_stats=1 -detect_leaks=0 -timeout=25 -rss_limit_mb=4096 \
            -artifact_prefix="$work/artifacts/" "${options[@]}" "$@" "$work/corpus" > "$work/log" 2>&1 || rc=$?
    ended=$(date +%s.%N)
    local executions rate seconds
    executions=$(grep -a 'stat::number_of_executed_units' "$work/log" | tail -1 | awk '{print $2}' || true)
    executions=${executions:-0}
    seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')
    rate=$(awk -v n="$executions" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    local slowest
    slowest=$(grep -a 'stat::slowest_unit_time_sec' "$work/log" | tail -1 | awk '{print $2}' || true)
    printf '%-13s %10s executions %8s s %7s exec/s  corpus %4s  slowest %ss  %s\n' "$target" "$executions" "$seconds" "$rate" \
        "$(ls "$work/corpus" | wc -l)" "${slowest:-?}" "$([[ $rc == 0 ]] && echo ok || echo "CRASH (exit $rc)")"
    if [[ $rc != 0 ]]; then
        { grep -a -m1 -B2 -A25 'ERROR: \|Fatal error\|deadly signal\|ALARM' "$work/log" || tail -30 "$work/log"; } | head -60 | sed 's/^/    /'
        echo "    input: $(ls "$work"/artifacts/* 2>/dev/null | tr '\n' ' ')  log: $work/log"
        return 1
    fi
}

run_all() {
    local failed=0 t
    for t in "${TARGETS[@]}"; do run_target "$t" "$@" || failed=1; done
    return $failed
}

case "${1:-}" in
    build)
        build ;;
    short)
        [[ "${2:-}" =~ ^[0-9]+$ ]] || die "usage: run.sh short SECONDS"
        build_if_needed
        run_all -max_total_time="$2" ;;
    long)
        build_if_needed
        run_all -runs=1000000 ;;
    thumbor_url|jsonp|file_request|yaml_config)
        target="$1"; shift
        TARGETS=("$target"); build_if_needed
        read -r -a options <<< "$(fuzzer_options "$target")"
        SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:malloc_context_size=5:quarantine_size_mb=32}" \
            exec nice -n 15 "$BUILD/bin/$target" -detect_leaks=0 "${options[@]}" "$@" ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 2 ;;
esac

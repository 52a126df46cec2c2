// libFuzzer target `yaml_config`: the configuration reader. Each input is the YAML file `pinhole serve
// --config` reads. It is loaded through the provider stack ServiceSupport's ConfigurationSource.reader(file:)
// builds (`PINHOLE_…` environment variables, here none, over swift-configuration's YAMLSnapshot on
// Yams/libyaml, prebuilt), then every section is read the way the services read it:
//   - `encode`, `cluster` (and `log`, where ServiceSupport has LogConfiguration): the real
//     EncodeConfiguration(reader:) and ClusterConfiguration(reader:) (Sources/ReviewEncoding/EncodeConfiguration.swift,
//     Sources/pinhole/ClusterConfiguration.swift, compiled into this module; RenditionPlan.largerHeights is
//     cut out of RenditionPlan.swift by run.sh);
//   - `thumbnails` and `files`: ServiceConfiguration / FileServerConfiguration need Imaging, Vips and
//     the S3 store, so their init(reader:) bodies are mirrored below call for call (run.sh warns when
//     the keys read there and here differ). `allowed_networks` goes through the real AddressRange parser
//     where Sources/ThumbnailService/Loaders/SourceAddress.swift exists (compiled in, PINHOLE_ADDRESS_RANGE).
// ServiceSupport itself is compiled from source (instrumented) as its own module.
//
// By default the YAML is parsed in memory (YAMLTextProvider: what FileProvider<YAMLSnapshot> does once it
// has read the file), which keeps each execution on the fuzzer's thread. PINHOLE_FUZZ_YAML_VIA_FILE=1
// writes each input to a temporary file and calls ConfigurationSource.reader(file:) itself (async, on the
// cooperative pool: several times slower under load).
import Configuration
import Dispatch
import Foundation
import ServiceSupport

private let viaFile = ProcessInfo.processInfo.environment["PINHOLE_FUZZ_YAML_VIA_FILE"] == "1"
private let path: String = {
    let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    return "\(directory)/pinhole-fuzz-config-\(getpid()).yaml"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAMLConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let contents = Data(bytes: data, count: size)
    guard let reader = viaFile ? loadReaderFromFile(contents) : loadReader(contents) else {
        return 0   // malformed YAML: a ConfigurationError, start-up stops
    }
    do { try readThumbnails(reader) } catch {}
    do { try readFiles(reader) } catch {}
    do { _ = try EncodeConfiguration(reader: reader) } catch {}
    do { _ = try ClusterConfiguration(reader: reader) } catch {}
    #if PINHOLE_LOG_CONFIGURATION
    do { _ = try LogConfiguration(reader: reader) } catch {}
    #endif
    return 0
}

/// ConfigurationSource.reader(file:)'s providers, with the file's bytes in hand.
private func loadReader(_ contents: Data) -> ConfigReader? {
    let environment = KeyMappingProvider(upstream: EnvironmentVariablesProvider(environmentVariables: [:])) { key in
        AbsoluteConfigKey(["pinhole"] + key.components, context: key.context)
    }
    guard let yaml = try? YAMLTextProvider(contents) else { return nil }
    return ConfigReader(providers: [environment, yaml])
}

/// FileProvider<YAMLSnapshot> without the file: the same snapshot type, parsing options and provider name.
private struct YAMLTextProvider: ConfigProvider {
    let yaml: YAMLSnapshot

    init(_ contents: Data) throws {
        yaml = try YAMLSnapshot(data: contents.bytes, providerName: "FileProvider<YAMLSnapshot>", parsingOptions: .default)
    }

    var providerName: String { yaml.providerName }

    func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        try yaml.value(forKey: key, type: type)
    }

    func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    // swift-configuration is built with NonisolatedNonsendingByDefault: its closures say so.
    nonisolated(nonsending) func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey,
        type: ConfigType,
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    func snapshot() -> any ConfigSnapshot { yaml }

    nonisolated(nonsending) func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}

private final class ResultBox: @unchecked Sendable {
    var reader: ConfigReader?
}

private final class Flag: @unchecked Sendable { var value = false }   // the fuzzer's thread only
private let removesFileAtExit = Flag()

/// The real ConfigurationSource.reader(file:) over a temporary file; it is async, the fuzzer's thread waits.
private func loadReaderFromFile(_ contents: Data) -> ConfigReader? {
    if !removesFileAtExit.value { removesFileAtExit.value = true; atexit { unlink(path) } }
    guard (try? contents.write(to: URL(fileURLWithPath: path))) != nil else { fatalError("cannot write \(path)") }
    let box = ResultBox()
    let done = DispatchSemaphore(value: 0)
    let file = path
    Task.detached {
        box.reader = try? await ConfigurationSource.reader(file: file, environment: [:])
        done.signal()
    }
    done.wait()
    return box.reader
}

/// Mirrors ServiceConfiguration.init(reader:) (Sources/ThumbnailService/ServiceConfiguration.swift).
private func readThumbnails(_ reader: ConfigReader) throws {
    let r = ValueReader(reader: reader, prefix: "thumbnails")
    _ = try r.string("host")
    _ = try r.int("port", in: 0...65535)
    let securityKeys = try r.strings("security_keys") ?? []
    if securityKeys.contains(where: \.isEmpty) { throw ConfigurationError(key: "thumbnails.security_keys", problem: "keys must not be empty") }
    _ = try r.bool("allow_unsafe")
    if let text = try r.string("loader") { _ = ["http", "file", "file_then_http"].contains(text) }
    _ = try r.string("file_root")
    _ = try r.strings("allowed_hosts")
    _ = try r.bool("allow_any_host")
    if let ranges = try r.strings("allowed_networks") {
        #if PINHOLE_ADDRESS_RANGE
        for text in ranges {
            guard let range = AddressRange(text) else {
                throw ConfigurationError(key: "thumbnails.allowed_networks", problem: "'\(text)' is not an address or a CIDR range")
            }
            _ = (range.description, range.contains(.v4(0x7F00_0001)), range.contains(.v6(Array(repeating: 0, count: 15) + [1])))
        }
        #else
        _ = ranges
        #endif
    }
    _ = try r.string("hosts_file")
    _ = try r.double("connect_timeout", above: 0)
    _ = try r.double("request_timeout", above: 0)
    _ = try r.int("max_redirects", in: 0...20)
    _ = try r.int("max_source_bytes", in: 1...Int.max)
    _ = try r.int("video_ranged_above", in: 1...Int.max).map(Int64.init)
    _ = try r.int("max_pixels", in: 1...Int.max)
    _ = try r.int("max_width", in: 0...Int(Int32.max))
    _ = try r.int("max_height", in: 0...Int(Int32.max))
    _ = try r.bool("respect_orientation")
    if let name = try r.string("smart_detector") { _ = ["colour", "attention", "none"].contains(name) }
    if let names = try r.strings("filters") { _ = Set(names) }
    let jpegQuality = try r.int("quality", in: 1...100) ?? 80
    _ = try r.int("webp_quality", in: 1...100) ?? jpegQuality
    _ = try r.int("avif_quality", in: 1...100) ?? jpegQuality
    _ = try r.int("png_compression", in: 0...9)
    _ = try r.bool("progressive_jpeg")
    _ = try r.double("jpeg_shrink_reserve", above: 0)
    if let decoder = try r.string("jpeg_decoder") {
        guard ["turbojpeg", "libvips"].contains(decoder) else {
            throw ConfigurationError(key: "thumbnails.jpeg_decoder", problem: "'\(decoder)' is not one of turbojpeg, libvips")
        }
    }
    _ = try r.bool("jpeg_fast_dct")
    _ = try r.bool("jpeg_draft_scales")
    _ = try r.int("max_age", in: 0...Int(Int32.max))
    _ = try r.bool("auto_webp")
    _ = try r.bool("auto_avif")
    _ = try r.bool("auto_png_to_jpg")
    _ = try r.bool("keep_animation")
    _ = try r.bool("animated_webp")
    _ = try r.int("max_animation_frames", in: 1...10_000)
    let metaCallbackName = try r.string("meta_callback_name") ?? ""
    if !metaCallbackName.isEmpty, !JSONPCallback.isValid(metaCallbackName) {
        throw ConfigurationError(key: "thumbnails.meta_callback_name", problem: "'\(metaCallbackName)' is not a JavaScript identifier path")
    }
    _ = try r.bool("etags")
    _ = try r.string("cors_origin")
    _ = try r.int("workers", in: 0...1024)
    _ = try r.int("vips_concurrency", in: 0...256)
    _ = try r.strings("untrusted_loaders")
    _ = try r.bool("result_cache")
    _ = try r.string("cache_root")
    _ = Int64(try r.int("cache_max_bytes", in: 0...Int.max) ?? Int(Int64(10) << 30))
    _ = Double(try r.int("cache_expiry", in: 0...Int.max) ?? Int(0.0))
    _ = try r.bool("cache_unsafe")
    _ = try r.bool("source_cache")
    _ = try r.string("source_cache_root")
    _ = Int64(try r.int("source_cache_max_bytes", in: 0...Int.max) ?? Int(Int64(2) << 30))
    _ = try r.int("cache_memory_bytes", in: 0...Int.max)
    _ = try r.bool("coalesce")
    _ = try r.int("render_queue", in: 1...100_000)
    _ = try r.int("decode_memory_bytes", in: 0...Int.max)
    _ = try r.double("request_deadline", above: 0)
    _ = try r.strings("prewarm_sizes")
    _ = try r.string("prewarm_source_url")
    _ = try r.bool("decoder_isolation")
    _ = try r.int("decoder_workers", in: 1...64)
    _ = try r.double("decoder_timeout", above: 0)
    _ = try r.int("decoder_cpu_seconds", in: 1...3600)
    _ = Int64(try r.int("decoder_memory_bytes", in: 64 << 20...Int.max) ?? Int(Int64(1) << 30))
    _ = try r.int("decoder_recycle_after", in: 1...1_000_000)
}

/// Mirrors FileServerConfiguration.init(reader:) (Sources/FileServer/FileServerConfiguration.swift).
private func readFiles(_ reader: ConfigReader) throws {
    let r = ValueReader(reader: reader, prefix: "files")
    _ = try r.string("host")
    _ = try r.int("port", in: 0...65535)
    let secrets = try r.strings("secrets") ?? []
    if secrets.contains(where: \.isEmpty) { throw ConfigurationError(key: "files.secrets", problem: "secrets must not be empty") }
    if let text = try r.string("signature_message") { _ = ["canonical", "id_only", "raw_query"].contains(text) }
    _ = try r.strings("required_params")
    _ = try r.string("root")
    _ = Int64(try r.int("max_upload_bytes", in: 0...Int.max) ?? Int(Int64(10) << 30))
    _ = try r.strings("cors_origins")
    _ = try r.int("cors_max_age", in: 0...Int(Int32.max))
    _ = try r.string("nginx_upload_dir")
    _ = try r.string("accel_redirect_prefix")
    var s3 = false
    if let text = try r.string("store") {
        guard ["disk", "s3"].contains(text.trimmed) else { throw ConfigurationError(key: "files.store", problem: "'\(text)'") }
        s3 = text.trimmed == "s3"
    }
    if let grace = try r.string("debris_grace") {
        guard let value = Double(grace.trimmed), value >= 0 else {
            throw ConfigurationError(key: "files.debris_grace", problem: "'\(grace)' is not a number of seconds")
        }
    }
    _ = try r.double("stale_upload_age", above: 0)
    let endpoint = try r.string("s3_endpoint") ?? ""
    let bucket = try r.string("s3_bucket") ?? ""
    _ = try r.string("s3_region")
    let accessKey = try r.string("s3_access_key") ?? ""
    let secretKey = try r.string("s3_secret_key") ?? ""
    if let text = try r.string("s3_addressing") { _ = ["path", "virtual"].contains(text.trimmed) }
    _ = try r.string("s3_prefix")
    _ = try r.int("s3_part_size", in: (5 << 20)...(5 << 30))
    let timeout = try r.int("s3_timeout", in: 1...3600) ?? 30
    _ = Int64(timeout)
    if s3 {
        for (key, value) in [("s3_endpoint", endpoint), ("s3_bucket", bucket), ("s3_access_key", accessKey), ("s3_secret_key", secretKey)]
        where value.isEmpty {
            throw ConfigurationError(key: "files.\(key)", problem: "must be set when files.store is s3")
        }
        _ = endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")
    }
}

import ArgumentParser
import CSystemSupport
import Configuration
import FileServer
import Foundation
import HTTPServing
import ServiceSupport
import ThumbnailService
import Vips

/// `pinhole doctor`: checks what a deployment needs before it serves (configuration, keys, directories,
/// decoders, FFmpeg, ports, the clock, nginx) and prints each result with its fix. Exits 1 on any failure.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration and the machine, print each result with its fix; exit 1 on any failure.")

    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "A complete nginx configuration to check with `nginx -t` (default: the system's, when nginx is installed).")
    var nginxConfig: String?
    @Flag(help: "Skip the port checks (for a machine where Pinhole is already running).") var skipPorts = false

    /// Keys that must never sign production URLs: Thumbor's documented default, and the values used by
    /// examples and tests.
    static let knownKeys: Set<String> = ["MY_SECURE_KEY", "test-security-key", "change-me", "changeme", "secret", "key",
                                         "test-files-secret", "development"]

    func run() async throws {
        var report = DoctorReport()
        let reader: ConfigReader
        do {
            reader = try await ConfigurationSource.reader(file: config)
        } catch {
            report.fail("configuration", OperatorText.describe(error), fix: "give --config a readable YAML file")
            report.finish()
        }
        var thumbnails = ServiceConfiguration()
        var files = FileServerConfiguration()
        do {
            thumbnails = try ServiceConfiguration(reader: reader)
            files = try FileServerConfiguration(reader: reader)
            _ = try LogConfiguration(reader: reader)
            _ = try ClusterConfiguration(reader: reader)
            report.ok("configuration", config.map { "\($0) and PINHOLE_ variables read" } ?? "embedded defaults and PINHOLE_ variables read")
        } catch {
            report.fail("configuration", OperatorText.describe(error), fix: "correct the key named (`pinhole config-keys` lists every key)")
        }
        checkKeys(thumbnails.securityKeys, name: "thumbnails.security_keys", report: &report)
        checkKeys(files.secrets, name: "files.secrets", report: &report)
        if thumbnails.loader != .http { checkDirectory(thumbnails.fileRoot, role: "thumbnails.file_root", write: false, report: &report) }
        if thumbnails.resultCache { checkDirectory(thumbnails.cacheRoot, role: "thumbnails.cache_root", needs: thumbnails.cacheMaxBytes, report: &report) }
        if thumbnails.sourceCache { checkDirectory(thumbnails.sourceCacheRoot, role: "thumbnails.source_cache_root", report: &report) }
        if files.store == .disk {
            checkDirectory(files.root, role: "files.root", report: &report)
        } else {
            report.warn("files.store", "s3 (\(files.s3Endpoint), bucket \(files.s3Bucket)): not contacted by doctor",
                        fix: "check with a /put and /get once running")
        }
        checkLoaders(&report)
        checkTool("ffmpeg", ["-version"], role: "video thumbnails and review encodes", report: &report)
        checkTool("ffprobe", ["-version"], role: "review encodes", report: &report)
        if thumbnails.decoders.isolate { checkTool("bwrap", ["--version"], role: "decode-worker sandbox", required: false, report: &report) }
        if !skipPorts {
            checkPort(thumbnails.host, thumbnails.port, key: "thumbnails.port", report: &report)
            checkPort(files.host, files.port, key: "files.port", report: &report)
        }
        checkClock(&report)
        checkNginx(&report)
        report.finish()
    }

    func checkKeys(_ keys: [String], name: String, report: inout DoctorReport) {
        if keys.isEmpty {
            return report.fail(name, "not set: each start makes a random development key, so URLs stop verifying after a restart",
                               fix: "set \(name) (e.g. `openssl rand -base64 32`); ftrack must use the same value")
        }
        for (index, key) in keys.enumerated() {
            if Self.knownKeys.contains(key) {
                report.fail(name, "key \(index + 1) is a published example or development value",
                            fix: "replace it with a random secret (`openssl rand -base64 32`)")
            } else if key.utf8.count < 16 {
                report.fail(name, "key \(index + 1) is \(key.utf8.count) characters: guessable", fix: "use at least 16 random characters")
            }
        }
        if !keys.contains(where: { Self.knownKeys.contains($0) || $0.utf8.count < 16 }) {
            report.ok(name, "\(keys.count) key\(keys.count == 1 ? "" : "s") set")
        }
    }

    func checkDirectory(_ path: String, role: String, write: Bool = true, needs: Int64 = 0, report: inout DoctorReport) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard write, (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil else {
                return report.fail(role, "\(path) does not exist and cannot be created", fix: "create it and give the service user write access")
            }
            isDirectory = true
        }
        guard isDirectory.boolValue else { return report.fail(role, "\(path) is not a directory", fix: "point \(role) at a directory") }
        if write {
            let probe = path + "/.pinhole-doctor-\(getpid())"
            guard FileManager.default.createFile(atPath: probe, contents: Data("x".utf8)) else {
                return report.fail(role, "\(path) is not writable by this user", fix: "chown it to the service user (systemd: ReadWritePaths=)")
            }
            try? FileManager.default.removeItem(atPath: probe)
        } else if !FileManager.default.isReadableFile(atPath: path) {
            return report.fail(role, "\(path) is not readable", fix: "give the service user read access")
        }
        var stats = statvfs()
        let free = statvfs(path, &stats) == 0 ? Int64(stats.f_bavail) * Int64(stats.f_frsize) : -1
        let type = SharedFilesystem.isNetworked(path) ? "network filesystem (NFS/SMB)" : "local filesystem"
        let detail = "\(path): \(write ? "writable" : "readable"), \(free >= 0 ? Self.bytes(free) : "unknown") free, \(type)"
        if free >= 0, free < 1 << 30 {
            report.fail(role, detail, fix: "free space: under 1 GiB left")
        } else if needs > 0, free >= 0, free < needs {
            report.warn(role, detail, fix: "the cache may grow to \(Self.bytes(needs)); lower thumbnails.cache_max_bytes or free space")
        } else {
            report.ok(role, detail)
        }
    }

    func checkLoaders(_ report: inout DoctorReport) {
        let required = ["jpegload", "pngload", "webpload", "tiffload", "gifload"]
        let studio = ["heifload": "HEIF/AVIF", "jxlload": "JPEG XL", "svgload": "SVG", "pdfload": "PDF", "openexrload": "EXR",
                      "radload": "Radiance HDR", "magickload": "PSD/DPX via ImageMagick"]
        let missing = required.filter { !VipsRuntime.hasOperation($0) }
        if !missing.isEmpty {
            report.fail("libvips \(VipsRuntime.version)", "missing \(missing.joined(separator: ", "))", fix: "install Debian's libvips42 with its default loaders")
        }
        let absent = studio.keys.sorted().filter { !VipsRuntime.hasOperation($0) }.map { studio[$0]! }
        if absent.isEmpty {
            if missing.isEmpty { report.ok("libvips \(VipsRuntime.version)", "every loader present (JPEG, PNG, WebP, TIFF, GIF, \(studio.values.sorted().joined(separator: ", ")))") }
        } else {
            report.warn("libvips \(VipsRuntime.version)", "no loader for \(absent.joined(separator: ", ")): those files answer 400",
                        fix: "install libvips-dev's optional modules (libvips42's recommends, libheif, libopenexr, librsvg, poppler)")
        }
    }

    func checkTool(_ name: String, _ arguments: [String], role: String, required: Bool = true, report: inout DoctorReport) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CocoaError(.executableNotLoadable) }
            let first = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? name
            report.ok(name, first)
        } catch {
            let fix = "install it (Debian: apt install \(name == "bwrap" ? "bubblewrap" : name == "ffprobe" ? "ffmpeg" : name))"
            required ? report.fail(name, "not found: needed for \(role)", fix: fix) : report.warn(name, "not found: \(role) falls back to rlimits only", fix: fix)
        }
    }

    func checkPort(_ host: String, _ port: Int, key: String, report: inout DoctorReport) {
        let result = pinhole_try_bind(host, Int32(port))
        switch result {
        case 0: report.ok(key, "\(host):\(port) is free")
        case -2: report.fail(key, "\(host) is not an address of this machine", fix: "set the host key to an address this machine has")
        default: report.fail(key, "\(host):\(port) is in use (errno \(result))", fix: "stop what listens there (`ss -ltnp`), or choose another port; --skip-ports if it is Pinhole itself")
        }
    }

    func checkClock(_ report: inout DoctorReport) {
        let now = Date()
        guard now.timeIntervalSince1970 > 1_704_067_200 else {
            return report.fail("clock", "reads \(now): before 2024", fix: "set the clock; signed URL expiry and the removal journal depend on it")
        }
        switch pinhole_clock_synchronised() {
        case 1: report.ok("clock", "synchronised (NTP)")
        case 0: report.warn("clock", "not synchronised by NTP", fix: "run an NTP client (systemd-timesyncd, chrony): nodes sharing a store need clocks within 5 minutes")
        default: report.warn("clock", "synchronisation state unknown", fix: "check the NTP client")
        }
    }

    func checkNginx(_ report: inout DoctorReport) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") else {
            if nginxConfig != nil { report.fail("nginx", "not installed", fix: "apt install nginx") }
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-t", "-q"] + (nginxConfig.map { ["-c", URL(fileURLWithPath: $0).path] } ?? [])
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let which = nginxConfig ?? "the system configuration"
            if process.terminationStatus == 0 {
                report.ok("nginx", "\(which): syntax ok")
            } else {
                report.fail("nginx", "\(which): \(text.split(separator: "\n").first ?? "nginx -t failed")",
                            fix: "correct the line named (config/nginx/ has Pinhole's shipped server blocks)")
            }
        } catch {
            report.fail("nginx", "cannot run nginx -t: \(OperatorText.describe(error))", fix: "check the nginx installation")
        }
    }

    static func bytes(_ count: Int64) -> String {
        let gib = Double(count) / Double(1 << 30)
        return gib >= 1 ? String(format: "%.1f GiB", gib) : String(format: "%.0f MiB", Double(count) / Double(1 << 20))
    }
}

/// The lines `doctor` prints and whether any failed.
struct DoctorReport {
    private(set) var failures = 0

    mutating func ok(_ name: String, _ detail: String) { print("ok    \(name): \(detail)") }

    mutating func warn(_ name: String, _ detail: String, fix: String) {
        print("warn  \(name): \(detail)\n      fix: \(fix)")
    }

    mutating func fail(_ name: String, _ detail: String, fix: String) {
        failures += 1
        print("FAIL  \(name): \(detail)\n      fix: \(fix)")
    }

    func finish() -> Never {
        print(failures == 0 ? "doctor: no failures" : "doctor: \(failures) failure\(failures == 1 ? "" : "s")")
        fflush(nil)
        exit(failures == 0 ? 0 : 1)
    }
}

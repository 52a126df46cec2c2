import Foundation
import ServiceSupport
import Testing
@testable import ThumbnailService

@Suite("Configuration: defaults, YAML file, PINHOLE_ environment, validation")
struct ConfigurationTests {
    func load(yaml: String? = nil, env: [String: String] = [:]) async throws -> ServiceConfiguration {
        var file: String?
        if let yaml {
            let path = NSTemporaryDirectory() + "pinhole-config-\(UUID().uuidString).yaml"
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            file = path
        }
        defer { if let file { try? FileManager.default.removeItem(atPath: file) } }
        return try ServiceConfiguration(reader: try await ConfigurationSource.reader(file: file, environment: env))
    }

    @Test func defaults() async throws {
        let c = try await load()
        #expect(c.port == 8888 && !c.allowUnsafe && c.securityKeys.isEmpty && c.maxAge == 86400)
        #expect(c.render.maxPixels == 75_000_000 && c.render.jpegQuality == 80 && c.render.respectOrientation)
    }

    @Test func fileThenEnvironment() async throws {
        let yaml = """
        thumbnails:
          port: 9999
          security_keys: [first, second]
          allow_unsafe: true
          loader: file
          quality: 70
          allowed_hosts:
            - files.example
        """
        let c = try await load(yaml: yaml, env: ["PINHOLE_THUMBNAILS_PORT": "7777", "PINHOLE_THUMBNAILS_WEBP_QUALITY": "60"])
        #expect(c.port == 7777)
        #expect(c.securityKeys == ["first", "second"])
        #expect(c.allowUnsafe && c.loader == .file)
        #expect(c.render.jpegQuality == 70 && c.render.webpQuality == 60 && c.render.avifQuality == 70)
        #expect(c.allowedHosts == ["files.example"])
    }

    @Test func environmentListsAreCommaSeparated() async throws {
        let c = try await load(env: ["PINHOLE_THUMBNAILS_SECURITY_KEYS": "new,old"])
        #expect(c.securityKeys == ["new", "old"])
    }

    @Test("bad values name their key", arguments: [
        ("PINHOLE_THUMBNAILS_PORT", "eighty", "thumbnails.port"),
        ("PINHOLE_THUMBNAILS_PORT", "70000", "thumbnails.port"),
        ("PINHOLE_THUMBNAILS_ALLOW_UNSAFE", "maybe", "thumbnails.allow_unsafe"),
        ("PINHOLE_THUMBNAILS_LOADER", "s3", "thumbnails.loader"),
        ("PINHOLE_THUMBNAILS_QUALITY", "0", "thumbnails.quality"),
        ("PINHOLE_THUMBNAILS_REQUEST_TIMEOUT", "-1", "thumbnails.request_timeout"),
        ("PINHOLE_THUMBNAILS_MAX_PIXELS", "lots", "thumbnails.max_pixels"),
    ])
    func badValues(variable: String, value: String, key: String) async throws {
        do {
            _ = try await load(env: [variable: value])
            Issue.record("\(variable)=\(value) was accepted")
        } catch let error as ConfigurationError {
            #expect(error.key == key)
            #expect(error.description.contains(key))
        }
    }

    @Test func everyKeyIsInTheExampleFile() throws {
        let example = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("config/pinhole.example.yaml").path, encoding: .utf8)
        let lines = example.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for entry in ServiceConfiguration.keys {
            let leaf = entry.key.split(separator: ".").last!
            guard let at = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(leaf):") }) else {
                Issue.record("config/pinhole.example.yaml lacks \(entry.key)")
                continue
            }
            // The comment block above the key (keys that share one block, such as auto_webp and auto_avif,
            // are skipped over) names its Thumbor equivalent, or says "Thumbor: -" when there is none.
            // A comment on the key's own line counts too.
            let inline = lines[at].split(separator: "#", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            var block: [String] = []
            var index = at - 1
            while index >= 0 {
                let line = lines[index].trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("#") {
                    block.insert(line, at: 0)
                } else if !block.isEmpty || line.isEmpty || !line.contains(":") {
                    break   // the block above ended, or a blank line or a list came first
                }
                index -= 1
            }
            let comment = (block + [inline]).joined(separator: " ")
            let named = entry.thumbor == "-" ? comment.contains("Thumbor: -") : comment.contains(entry.thumbor)
            #expect(named, "the comment above \(entry.key) does not name \(entry.thumbor): \(comment)")
        }
    }
}

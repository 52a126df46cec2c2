import AsyncHTTPClient
import Foundation
import Imaging
import NIOCore
import Testing
@testable import ThumbnailService

@Suite("File loader: nothing escapes the root")
struct FileLoaderTests {
    let root: String
    let loader: FileLoader

    init() throws {
        root = NSTemporaryDirectory() + "pinhole-root-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/sub dir", withIntermediateDirectories: true)
        try Data("inside".utf8).write(to: URL(fileURLWithPath: root + "/sub dir/a.jpg"))
        try Data("secret".utf8).write(to: URL(fileURLWithPath: root + "-secret.txt"))
        try FileManager.default.createSymbolicLink(atPath: root + "/escape.jpg", withDestinationPath: root + "-secret.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/inner.jpg", withDestinationPath: root + "/sub dir/a.jpg")
        loader = FileLoader(root: root, maxBytes: 1000)
    }

    @Test func resolvesInsideTheRoot() async throws {
        #expect(loader.resolve("sub%20dir/a.jpg") != nil)
        #expect(loader.resolve("/sub%20dir/a.jpg") != nil)
        #expect(loader.resolve("inner.jpg") != nil)
        let bytes = try await loader.load("sub%20dir/a.jpg")
        #expect(String(buffer: bytes) == "inside")
    }

    @Test("refuses escapes", arguments: [
        "../pinhole-secret.txt", "sub%20dir/../../x", "%2E%2E/x", "sub%20dir%2F..%2F..%2Fx", "escape.jpg",
        "/etc/passwd", "sub%20dir", "", "a%00.jpg",
    ])
    func refusesEscapes(key: String) async {
        #expect(loader.resolve(key) == nil)
        await #expect(throws: ServiceError.self) { try await loader.load(key) }
    }

    @Test func sizeLimit() async throws {
        try Data(repeating: 1, count: 2000).write(to: URL(fileURLWithPath: root + "/big.jpg"))
        do {
            _ = try await loader.load("big.jpg")
            Issue.record("over-limit file was read")
        } catch {
            #expect(error.status == .badRequest)
        }
    }
}

@Suite("HTTP loader: URL re-encoding and the host allow-list")
struct HTTPLoaderTests {
    @Test("Thumbor's quote_url", arguments: [
        ("http%3A//x.com/q.jpg%253Fa%253D1%2526b%253D%252520x", "http://x.com/q.jpg%3Fa%3D1%26b%3D%2520x"),
        ("x.com/a%20b.jpg", "http://x.com/a%20b.jpg"),
        ("https%3A//x.com/a.jpg", "https://x.com/a.jpg"),
    ])
    func fetchURL(imageURL: String, expected: String) {
        #expect(HTTPLoader.fetchURL(for: imageURL) == expected)
    }

    func loader(_ hosts: [String], any: Bool = false, networks: [String] = [], pinned: String? = nil) throws -> HTTPLoader {
        var settings = HTTPLoader.Settings(allowedHosts: hosts, allowAnyHost: any, connectTimeout: 1, requestTimeout: 1, maxRedirects: 5, maxBytes: 100)
        settings.allowedNetworks = networks.compactMap(AddressRange.init)
        if let pinned {
            let file = NSTemporaryDirectory() + "pinhole-hosts-\(UUID().uuidString)"
            try pinned.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            settings.resolver = try SourceResolver(hostsFile: file)
        }
        return HTTPLoader(clientConfiguration: .init(), settings: settings)
    }

    @Test func allowList() throws {
        #expect(try loader(["files.example"]).validate("http%3A//files.example/a.jpg") == nil)
        #expect(try loader(["files.example"]).validate("http%3A//FILES.example:9000/a.jpg") == nil)
        #expect(try loader(["files.example"]).validate("http%3A//evil.example/a.jpg")?.status == .badRequest)
        #expect(try loader([]).validate("http%3A//files.example/a.jpg")?.status == .badRequest)
        #expect(try loader([], any: true).validate("http%3A//files.example/a.jpg") == nil)
        #expect(try loader(["files.example"]).validate("http%3A///a.jpg")?.status == .badRequest)
    }

    @Test("Obfuscated IPv4 spellings are refused even when any host is allowed", arguments: [
        "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "127.1", "017700000001", "0xA9FEA9FE",
    ])
    func obfuscatedAddresses(host: String) throws {
        #expect(SourceAddress.isObfuscatedIPv4(host))
        let problem = try loader([], any: true).validate("http%3A//\(host)/a.jpg")
        #expect(problem?.status == .badRequest && problem?.message.contains("disguise") == true)
    }

    @Test func canonicalSpellingsAreNotObfuscated() {
        for host in ["127.0.0.1", "8.8.8.8", "example.com", "::1", "1.2.3.4.example", "12345.example"] {
            #expect(!SourceAddress.isObfuscatedIPv4(host), "\(host)")
        }
    }

    @Test("Resolved addresses: public passes, special ranges need allowed_networks or an allow-listed name")
    func resolvedAddresses() async throws {
        let hosts = "127.0.0.2 images.example.com\n10.1.2.3 nas.example.com\n127.0.0.3 mixed.example.com\n93.184.216.34 mixed.example.com\n"
        let open = try loader([], any: true, pinned: hosts)
        await #expect(throws: ServiceError.self) { try await open.permittedAddress(for: "images.example.com") }
        await #expect(throws: ServiceError.self) { try await open.permittedAddress(for: "nas.example.com") }
        await #expect(throws: ServiceError.self) { try await open.permittedAddress(for: "127.0.0.1") }
        await #expect(throws: ServiceError.self) { try await open.permittedAddress(for: "[::ffff:127.0.0.1]") }
        await #expect(throws: ServiceError.self) { try await open.permittedAddress(for: "169.254.169.254") }
        // Of several addresses, the first public one is the one connected to.
        #expect(try await open.permittedAddress(for: "mixed.example.com") == SourceAddress("93.184.216.34"))
        #expect(try await open.permittedAddress(for: "93.184.216.34") == SourceAddress("93.184.216.34"))
        let studio = try loader([], any: true, networks: ["127.0.0.2/32", "10.0.0.0/8"], pinned: hosts)
        #expect(try await studio.permittedAddress(for: "images.example.com") == SourceAddress("127.0.0.2"))
        #expect(try await studio.permittedAddress(for: "nas.example.com") == SourceAddress("10.1.2.3"))
        await #expect(throws: ServiceError.self) { try await studio.permittedAddress(for: "127.0.0.1") }
        // A host the operator named may resolve anywhere.
        let named = try loader(["images.example.com"], pinned: hosts)
        #expect(try await named.permittedAddress(for: "images.example.com") == SourceAddress("127.0.0.2"))
    }
}

@Suite("Source address classes (SSRF)")
struct SourceAddressTests {
    @Test("Literal addresses", arguments: [
        ("8.8.8.8", SourceAddress.Kind.public), ("93.184.216.34", .public), ("127.0.0.1", .loopback), ("127.255.0.9", .loopback),
        ("10.0.0.1", .private), ("172.16.5.4", .private), ("172.31.255.255", .private), ("172.32.0.1", .public),
        ("192.168.1.1", .private), ("169.254.169.254", .linkLocal), ("100.64.0.1", .carrierGradeNAT), ("100.127.255.255", .carrierGradeNAT),
        ("100.128.0.1", .public), ("224.0.0.1", .multicast), ("239.255.255.250", .multicast), ("0.0.0.0", .unspecified),
        ("255.255.255.255", .reserved), ("240.0.0.1", .reserved), ("192.0.2.1", .reserved), ("198.18.0.1", .reserved),
        ("::1", .loopback), ("::", .unspecified), ("::ffff:127.0.0.1", .ipv4Mapped), ("::ffff:8.8.8.8", .ipv4Mapped),
        ("fe80::1", .linkLocal), ("fc00::1", .uniqueLocal), ("fd12:3456::1", .uniqueLocal), ("ff02::1", .multicast),
        ("2001:db8::1", .reserved), ("2606:4700:4700::1111", .public), ("64:ff9b::a9fe:a9fe", .linkLocal),
        ("64:ff9b::808:808", .public), ("2002:7f00:1::", .loopback), ("2002:0808:0808::", .public), ("[::1]", .loopback),
    ])
    func classify(text: String, kind: SourceAddress.Kind) throws {
        let address = try #require(SourceAddress(text))
        #expect(address.kind == kind, "\(text)")
    }

    @Test func ranges() throws {
        let range = try #require(AddressRange("10.0.0.0/8"))
        #expect(range.contains(SourceAddress("10.255.1.2")!))
        #expect(!range.contains(SourceAddress("11.0.0.1")!))
        #expect(!range.contains(SourceAddress("::ffff:10.0.0.1")!))
        let single = try #require(AddressRange("127.0.0.2"))
        #expect(single.contains(SourceAddress("127.0.0.2")!) && !single.contains(SourceAddress("127.0.0.3")!))
        let v6 = try #require(AddressRange("fd00::/8"))
        #expect(v6.contains(SourceAddress("fd12::1")!) && !v6.contains(SourceAddress("fe80::1")!))
        #expect(AddressRange("10.0.0.0/33") == nil && AddressRange("example.com") == nil && AddressRange("0.0.0.0/0") != nil)
    }
}

@Suite("ETag and If-None-Match")
struct EntityTagTests {
    @Test func sha1OfBody() {
        #expect(EntityTag.of(ByteBuffer(string: "abc")) == "\"a9993e364706816aba3e25717850c26c9cd0d89d\"")
    }

    @Test func weakMatching() {
        let tag = "\"abc\""
        #expect(EntityTag.matches(ifNoneMatch: "\"abc\"", etag: tag))
        #expect(EntityTag.matches(ifNoneMatch: "W/\"abc\"", etag: tag))
        #expect(EntityTag.matches(ifNoneMatch: "\"x\", \"abc\"", etag: tag))
        #expect(EntityTag.matches(ifNoneMatch: "*", etag: tag))
        #expect(!EntityTag.matches(ifNoneMatch: "\"abd\"", etag: tag))
    }
}

@Suite("Decode worker jobs: options sent down the pipe")
struct WorkerJobTests {
    @Test func optionsRoundTrip() {
        for job in [WorkerJob(), WorkerJob(still: "-00:01.5"), WorkerJob(kind: .packets, path: "/tmp/p/excerpt-1", firstOnly: true),
                    WorkerJob(still: "3", path: "/tmp/p/excerpt-2", facts: true),
                    WorkerJob(shrink: ShrinkHint(width: 256, height: 0, covering: true))] {
            #expect(WorkerJob(options: job.options) == job)
        }
        // What the worker of an earlier release sent for still(): `still=<pos>` alone.
        #expect(WorkerJob(options: "still=1.5") == WorkerJob(still: "1.5"))
    }
}

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

    @Test func allowList() throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { try? client.syncShutdown() }
        func loader(_ hosts: [String], any: Bool = false) -> HTTPLoader {
            HTTPLoader(client: client, settings: .init(allowedHosts: hosts, allowAnyHost: any, connectTimeout: 1,
                                                       requestTimeout: 1, maxRedirects: 5, maxBytes: 100))
        }
        #expect(loader(["files.example"]).validate("http%3A//files.example/a.jpg") == nil)
        #expect(loader(["files.example"]).validate("http%3A//FILES.example:9000/a.jpg") == nil)
        #expect(loader(["files.example"]).validate("http%3A//evil.example/a.jpg")?.status == .badRequest)
        #expect(loader([]).validate("http%3A//files.example/a.jpg")?.status == .badRequest)
        #expect(loader([], any: true).validate("http%3A//files.example/a.jpg") == nil)
        #expect(loader(["files.example"]).validate("http%3A///a.jpg")?.status == .badRequest)
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

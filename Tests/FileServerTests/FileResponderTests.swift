import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import FileServer

@Suite("File responder: events after uploads and removals")
struct FileResponderTests {
    @Test func uploadsOfImagesAndVideoAndRemovalsAreAnnounced() async throws {
        var configuration = FileServerConfiguration()
        configuration.secrets = ["secret"]
        configuration.root = NSTemporaryDirectory() + "pinhole-responder-\(UUID().uuidString)"
        let server = try FileServer(configuration: configuration, logger: Logger(label: "test"))
        let events = server.events.subscribe()
        @Sendable func url(_ operation: String, _ id: String) -> String {
            let signature = RequestSignature.sign("id=\(id)", secret: "secret")
            return "/\(operation)?id=\(id)&signature=\(signature)"
        }
        let app = Application(responder: server.responder)
        try await app.test(.router) { client in
            var image = HTTPFields()
            image[.contentType] = "image/png"
            try await client.execute(uri: url("put", "img1"), method: .put, headers: image, body: ByteBuffer(string: "png")) { response in
                #expect(response.status == .ok)
            }
            var text = HTTPFields()
            text[.contentType] = "text/plain"
            try await client.execute(uri: url("put", "txt1"), method: .put, headers: text, body: ByteBuffer(string: "hello")) { response in
                #expect(response.status == .ok)
            }
            var video = HTTPFields()
            video[.contentType] = "video/mp4"
            try await client.execute(uri: url("put", "vid1"), method: .put, headers: video, body: ByteBuffer(string: "mp4")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: url("remove", "img1"), method: .delete) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/put?id=img2&signature=bad", method: .put, headers: image, body: ByteBuffer(string: "png")) { response in
                #expect(response.status == .forbidden)
            }
        }
        var received: [FileServerEvent] = []
        for await event in events {
            received.append(event)
            if received.count == 3 { break }
        }
        #expect(received == [
            .uploaded(id: "img1", contentType: "image/png", size: 3, fileName: nil),
            .uploaded(id: "vid1", contentType: "video/mp4", size: 3, fileName: nil),
            .removed(id: "img1"),
        ])
    }
}

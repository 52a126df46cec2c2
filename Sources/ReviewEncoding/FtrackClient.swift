import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceSupport

/// ftrack's JSON API as ftrack-python-api's `Session.call` speaks it: `POST <server>/api` with a JSON list
/// of operations, the user and key in `ftrack-user` and `ftrack-api-key`, one result per operation back.
/// An error is `{"exception": …, "content": …}`, with a 200 (or, with `ftrack-strict-api`, an error status).
struct FtrackClient: Sendable {
    let server: String
    let user: String
    let apiKey: String
    let timeout: Double
    let http: HTTPClient

    /// Why a call failed; every case is retried by the job (the key may be mended, the server come back).
    enum Failure: Error, CustomStringConvertible {
        case unauthorized
        case status(Int)
        case server(exception: String, content: String)
        case unreachable(String)
        case malformed(String)

        var description: String {
            switch self {
            case .unauthorized: "ftrack refused the API user or key (401)"
            case let .status(code): "ftrack's API answered HTTP \(code)"
            case let .server(exception, content): "ftrack's API reported \(exception): \(content.prefix(200))"
            case let .unreachable(reason): "ftrack's API did not answer: \(reason)"
            case let .malformed(reason): "ftrack's API answered something unreadable: \(reason)"
            }
        }
    }

    /// One batch; the results, one per operation.
    func call(_ operations: [[String: Any]]) async throws(Failure) -> [[String: Any]] {
        let body: Data
        do { body = try JSONSerialization.data(withJSONObject: operations, options: [.sortedKeys]) } catch {
            throw .malformed("cannot encode the request")
        }
        var request = HTTPClientRequest(url: server + "/api")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: "application/json")
        request.headers.add(name: "ftrack-user", value: user)
        request.headers.add(name: "ftrack-api-key", value: apiKey)
        request.body = .bytes(ByteBuffer(bytes: body))
        let status: Int, text: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            status = Int(response.status.code)
            text = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw .unreachable(OperatorText.describe(error))
        }
        if status == 401 { throw .unauthorized }
        let decoded = try? JSONSerialization.jsonObject(with: Data(text.readableBytesView))
        if let object = decoded as? [String: Any], let exception = object["exception"] {
            throw .server(exception: "\(exception)", content: "\(object["content"] ?? "")")
        }
        guard (200..<300).contains(status) else { throw .status(status) }
        guard let results = decoded as? [[String: Any]], results.count == operations.count else {
            throw .malformed("expected \(operations.count) results")
        }
        return results
    }

    /// `select <attributes> from …`: the entities found.
    func query(_ expression: String) async throws(Failure) -> [[String: Any]] {
        let results = try await call([["action": "query", "expression": expression]])
        guard let data = results[0]["data"] as? [[String: Any]] else { throw .malformed("a query without data") }
        return data
    }

    /// An entity reference as `Session.entity_reference` encodes one.
    static func reference(_ type: String, _ id: String) -> [String: Any] { ["__entity_type__": type, "id": id] }

    /// A create operation as `Session.commit` encodes one: the type repeated in the data, the key in both.
    static func create(_ type: String, key: [String], data: [String: Any]) -> [String: Any] {
        var entityData = data
        entityData["__entity_type__"] = type
        return ["action": "create", "entity_type": type, "entity_key": key, "entity_data": entityData]
    }

    static func update(_ type: String, id: String, attribute: String, value: Any) -> [String: Any] {
        ["action": "update", "entity_type": type, "entity_key": [id],
         "entity_data": ["__entity_type__": type, attribute: value]]
    }
}

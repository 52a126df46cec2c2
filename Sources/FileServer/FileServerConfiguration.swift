/// How the signed message of a file-server URL is built (spec ftrack.md §3).
public enum SignatureMessage: String, Sendable, CaseIterable {
    /// `k=v` pairs of every parameter but `signature`, sorted by key, decoded values, joined by `&`.
    case canonical
    /// The component id alone.
    case idOnly = "id_only"
    /// The query string exactly as sent, with the `signature` parameter removed.
    case rawQuery = "raw_query"
}

/// The file server's configuration (section `files`).
public struct FileServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 9000
    /// HMAC-SHA256 secrets: ftrack's `ftrack.service_secret`. Any verifies; several allow rotation.
    public var secrets: [String] = []
    public var signatureMessage: SignatureMessage = .canonical
    /// Parameters that must be present and signed (ftrack.extra_component_signature_params).
    public var requiredParameters: [String] = []
    /// Where components are stored.
    public var root = "./data/files"
    /// Largest upload, enforced while streaming (10 GiB).
    public var maxUploadBytes: Int64 = 10 * 1024 * 1024 * 1024
    /// Origins allowed by CORS; `*` allows any.
    public var corsOrigins: [String] = ["*"]
    public var corsMaxAge = 86_400
    /// Behind nginx: accept uploads nginx already wrote (header `X-File`) only from below this directory. Empty = off.
    public var nginxUploadDirectory = ""
    /// Behind nginx: answer `/get` with `X-Accel-Redirect: <prefix>/<stored path>` instead of bytes. Empty = off.
    public var accelRedirectPrefix = ""

    public init() {}

    public static let keys: [(key: String, meaning: String)] = [
        ("files.host", "address to listen on"),
        ("files.port", "port to listen on (ftrack.component_put_url / _get_url / _remove_url point here)"),
        ("files.secrets", "HMAC-SHA256 secrets (ftrack.service_secret); any verifies"),
        ("files.signature_message", "canonical | id_only | raw_query"),
        ("files.required_params", "signed parameters that must be present (ftrack.extra_component_signature_params)"),
        ("files.root", "storage directory"),
        ("files.max_upload_bytes", "largest upload"),
        ("files.cors_origins", "allowed origins (* = any)"),
        ("files.cors_max_age", "Access-Control-Max-Age of preflight answers"),
        ("files.nginx_upload_dir", "accept X-File uploads written by nginx below this directory (empty = off)"),
        ("files.accel_redirect_prefix", "answer /get with X-Accel-Redirect under this nginx location (empty = off)"),
    ]
}

import Configuration
import ServiceSupport

extension FileServerConfiguration {
    /// Reads the `files` section; missing keys keep their defaults.
    public init(reader: ConfigReader) throws {
        self.init()
        let r = ValueReader(reader: reader, prefix: "files")
        host = try r.string("host") ?? host
        port = try r.int("port", in: 0...65535) ?? port
        secrets = try r.strings("secrets") ?? secrets
        if secrets.contains(where: \.isEmpty) { throw ConfigurationError(key: "files.secrets", problem: "secrets must not be empty") }
        if let text = try r.string("signature_message") {
            guard let form = SignatureMessage(rawValue: text) else {
                throw ConfigurationError(key: "files.signature_message",
                                         problem: "'\(text)' is not one of \(SignatureMessage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            signatureMessage = form
        }
        requiredParameters = try r.strings("required_params") ?? requiredParameters
        root = try r.string("root") ?? root
        maxUploadBytes = Int64(try r.int("max_upload_bytes", in: 0...Int.max) ?? Int(maxUploadBytes))
        corsOrigins = try r.strings("cors_origins") ?? corsOrigins
        corsMaxAge = try r.int("cors_max_age", in: 0...Int(Int32.max)) ?? corsMaxAge
        nginxUploadDirectory = try r.string("nginx_upload_dir") ?? nginxUploadDirectory
        accelRedirectPrefix = try r.string("accel_redirect_prefix") ?? accelRedirectPrefix
    }
}

import HTTPServing
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

    /// Which backend holds the components.
    public enum StoreKind: String, Sendable, CaseIterable {
        /// Files under `root`: a local disk, or a filesystem several nodes share (NFS, SMB).
        case disk
        /// An S3-compatible bucket (`s3_*` keys).
        case s3
    }
    public var store: StoreKind = .disk
    /// Disk store: seconds a data file no record names is left alone, for commits other nodes have not
    /// finished (nil: 60 s on NFS or SMB, 0 on a local filesystem).
    public var debrisGrace: Double?
    /// Disk store: temporary files of writers on other hosts older than this (seconds) are debris.
    public var staleUploadAge: Double = 86_400
    public var s3Endpoint = ""
    public var s3Bucket = ""
    public var s3Region = "us-east-1"
    public var s3AccessKey = ""
    public var s3SecretKey = ""
    public var s3Addressing: S3Location.Addressing = .path
    /// Key prefix of components in the bucket.
    public var s3Prefix = ""
    /// Uploads larger than this go as a multipart upload in parts of this size (at least 5 MiB).
    public var s3PartSize = 16 << 20
    /// Seconds a call to the object store may take (and a download may stall) before it fails with 503.
    public var s3Timeout = 30

    /// What a client of the file-server port may do before it is cut off.
    public var limits = ConnectionLimits()

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
        ("files.store", "disk (files.root; local or a shared NFS/SMB filesystem) | s3 (an S3-compatible bucket)"),
        ("files.debris_grace", "disk store: seconds before an unnamed data file counts as debris (default 60 on NFS/SMB, 0 locally)"),
        ("files.stale_upload_age", "disk store: seconds after which another host's temporary files count as debris"),
        ("files.s3_endpoint", "object store URL, e.g. https://s3.eu-west-1.amazonaws.com or http://nas:9000"),
        ("files.s3_bucket", "bucket of the components"),
        ("files.s3_region", "region the requests are signed for (SigV4)"),
        ("files.s3_access_key", "access key id"),
        ("files.s3_secret_key", "secret access key (PINHOLE_FILES_S3_SECRET_KEY)"),
        ("files.s3_addressing", "path (endpoint/bucket/key) | virtual (bucket.endpoint/key)"),
        ("files.s3_prefix", "key prefix of components in the bucket"),
        ("files.s3_part_size", "bytes per multipart part; larger uploads use multipart"),
        ("files.s3_timeout", "seconds an object-store call may take before it fails with 503"),
    ] + ConnectionLimits.keys(section: "files")
}

import Configuration
import ObjectStorage
import ServiceSupport

extension FileServerConfiguration {
    /// Reads the `files` section; missing keys keep their defaults.
    public init(reader: ConfigReader) throws {
        self.init()
        let r = ValueReader(reader: reader, prefix: "files")
        try limits.read(r)
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
        if let text = try r.string("store") {
            guard let kind = StoreKind(rawValue: text.trimmed) else {
                throw ConfigurationError(key: "files.store", problem: "'\(text)' is not one of \(StoreKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            store = kind
        }
        if let grace = try r.string("debris_grace") {
            guard let value = Double(grace.trimmed), value >= 0 else {
                throw ConfigurationError(key: "files.debris_grace", problem: "'\(grace)' is not a number of seconds")
            }
            debrisGrace = value
        }
        staleUploadAge = try r.double("stale_upload_age", above: 0) ?? staleUploadAge
        s3Endpoint = try r.string("s3_endpoint") ?? s3Endpoint
        s3Bucket = try r.string("s3_bucket") ?? s3Bucket
        s3Region = try r.string("s3_region") ?? s3Region
        s3AccessKey = try r.string("s3_access_key") ?? s3AccessKey
        s3SecretKey = try r.string("s3_secret_key") ?? s3SecretKey
        if let text = try r.string("s3_addressing") {
            guard let addressing = S3Location.Addressing(rawValue: text.trimmed) else {
                throw ConfigurationError(key: "files.s3_addressing", problem: "'\(text)' is not path or virtual")
            }
            s3Addressing = addressing
        }
        s3Prefix = try r.string("s3_prefix") ?? s3Prefix
        s3PartSize = try r.int("s3_part_size", in: (5 << 20)...(5 << 30)) ?? s3PartSize
        s3Timeout = try r.int("s3_timeout", in: 1...3600) ?? s3Timeout
        if store == .s3 {
            for (key, value) in [("s3_endpoint", s3Endpoint), ("s3_bucket", s3Bucket), ("s3_access_key", s3AccessKey), ("s3_secret_key", s3SecretKey)]
            where value.isEmpty {
                throw ConfigurationError(key: "files.\(key)", problem: "must be set when files.store is s3")
            }
            guard s3Endpoint.hasPrefix("http://") || s3Endpoint.hasPrefix("https://") else {
                throw ConfigurationError(key: "files.s3_endpoint", problem: "'\(s3Endpoint)' is not an http:// or https:// URL")
            }
        }
    }

    /// The configured store. `sweeping`: a disk store removes what crashed writers left.
    public func makeStore(sweeping: Bool = true) throws -> any ComponentStore {
        switch store {
        case .disk:
            return try DiskComponentStore(root: root, sweeping: sweeping, debrisGrace: debrisGrace, staleAge: staleUploadAge)
        case .s3:
            let location = S3Location(endpoint: s3Endpoint, bucket: s3Bucket, region: s3Region, accessKey: s3AccessKey,
                                      secretKey: s3SecretKey, addressing: s3Addressing)
            return S3ComponentStore(client: S3Client(location: location, timeout: .seconds(Int64(s3Timeout))), prefix: s3Prefix,
                                    partSize: s3PartSize)
        }
    }

    /// Where removals are written for every node to read (beside the components).
    public func makeRemovalJournal(store: any ComponentStore) throws -> any RemovalJournal {
        if let s3 = store as? S3ComponentStore { return S3RemovalJournal(client: s3.client, prefix: s3Prefix) }
        return try DiskRemovalJournal(root: root)
    }

    /// Where components are, for start-up lines and messages.
    public var storeDescription: String {
        switch store {
        case .disk: "root: \(root)"
        case .s3: "s3: \(s3Endpoint) bucket \(s3Bucket)\(s3Prefix.isEmpty ? "" : " prefix " + s3Prefix)"
        }
    }
}

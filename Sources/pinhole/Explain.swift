import ArgumentParser
import FileServer
import Foundation
import Imaging
import Logging
import NIOCore
import ReviewEncoding
import ServiceSupport
import ThumbnailService
import ThumborURL
import Vips

extension JSONValue {
    /// A number as Python held it.
    init(_ number: PyNumber) {
        switch number {
        case let .int(n): self = .int(n)
        case let .float(x): self = .float(x)
        }
    }
}

/// `pinhole explain PATH`: what Pinhole makes of a thumbnail URL — the parsed request in Thumbor's field
/// names, whether its signature is valid for the configured keys, and the render plan.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain a thumbnail URL path: parsed request, signature validity and render plan, as JSON.")

    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "Check the signature with this key instead of the configured ones (repeatable).") var key: [String] = []
    @Option(help: "Plan against this local file instead of loading the source through the configured loader.") var source: String?
    @Flag(help: "Skip loading the source (no render plan).") var noPlan = false
    @Flag(help: "Read one path per line from standard input and print one compact JSON line each (request and signature only).")
    var batch = false
    @Argument(help: "The URL path as sent, e.g. /<signature>/fit-in/300x300/photo.jpg (a query string is ignored).") var path: String?

    func run() async throws {
        if batch {
            try await runBatch()
            return
        }
        guard let path else { throw ValidationError("give a URL path, or --batch") }
        var configuration = try await loadConfiguration(file: config)
        if !key.isEmpty { configuration.securityKeys = key }
        let rawPath = String(path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        var document: [String: Any] = ["path": rawPath]
        let request: ThumborRequest
        do {
            request = try ThumborPath.parse(rawPath)
        } catch {
            document["error"] = error == .noImage ? "no image in URL" : "URL is not valid UTF-8 once percent-decoded"
            print(Self.json(document))
            throw ExitCode(1)
        }
        document["request"] = Self.fields(of: request)
        let verifier = SignatureVerifier(keys: configuration.securityKeys)
        if request.unsafe {
            document["signature"] = configuration.allowUnsafe ? "unsafe (allowed)" : "unsafe (refused: thumbnails.allow_unsafe is false)"
        } else if request.hash == nil {
            document["signature"] = "missing"
        } else {
            document["signature"] = verifier.isValid(rawPath: rawPath, request: request) ? "valid" : "invalid"
            if let hash = request.hash {
                document["signed_string"] = ThumborPath.signedPortion(ofRawPath: rawPath, hash: hash)
            }
        }
        document["filters"] = request.filterCalls.map { ["name": $0.name, "arguments": $0.arguments] }
        if !noPlan {
            document["plan"] = await plan(for: request, configuration: configuration)
        }
        print(Self.json(document))
    }

    private func runBatch() async throws {
        var configuration = try await loadConfiguration(file: config)
        if !key.isEmpty { configuration.securityKeys = key }
        let verifier = SignatureVerifier(keys: configuration.securityKeys)
        while let line = readLine(strippingNewline: true) {
            var document: [String: Any] = ["path": line]
            do {
                let request = try ThumborPath.parse(line)
                document["request"] = Self.fields(of: request)
                document["signature_valid"] = request.hash.map { _ in verifier.isValid(rawPath: line, request: request) } ?? false
            } catch {
                document["error"] = error == .noImage ? "no image" : "invalid utf-8"
            }
            print(JSONValue(document).text(indent: 0))
        }
    }

    private func plan(for request: ThumborRequest, configuration: ServiceConfiguration) async -> Any {
        do {
            try VipsRuntime.start(configuration.vips)
            let bytes: [UInt8]
            if let source {
                bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
            } else {
                let server = try ThumbnailServer(configuration: configuration, logger: Logger(label: "pinhole.explain"))
                defer { Task { try? await server.shutdown() } }
                var buffer = try await server.loader.load(request.imageURL)
                bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            }
            let plan = try bytes.withUnsafeBytes { buffer throws(RenderError) in
                try Renderer.plan(buffer, request: request, settings: configuration.render)
            }
            let header = plan.header
            return [
                "source": ["width": header.width, "height": header.height, "bands": header.bands, "loader": header.loader,
                           "orientation": header.orientation] as [String: Any],
                "thumbor_source": ["width": plan.logicalSource.width, "height": plan.logicalSource.height],
                // As Thumbor's /meta lists them: {"type": "resize", "width": 300.0, "height": 188}, Python's
                // float and int spellings kept.
                "thumbor_operations": plan.geometry.operations.map { operation in
                    JSONValue.object(operation.thumborFields.reduce(into: ["type": .string(operation.thumborType)]) {
                        $0[$1.name] = JSONValue($1.value)
                    })
                },
                "output": ["width": plan.geometry.outputSize.width, "height": plan.geometry.outputSize.height,
                           "format": plan.outputFormat.rawValue] as [String: Any],
                "steps": plan.steps.map(\.description),
            ] as [String: Any]
        } catch {
            return ["error": OperatorText.describe(error)]
        }
    }

    /// The request in the field names of Thumbor's `RequestParameters`.
    static func fields(of r: ThumborRequest) -> [String: Any] {
        func dim(_ d: ThumborURL.Dimension) -> Any { d == .orig ? "orig" : d.pixels ?? 0 }
        var fields: [String: Any] = [
            "unsafe": r.unsafe, "hash": r.hash ?? NSNull(), "debug": r.debug, "meta": r.meta, "trim": r.trim ?? NSNull(),
            "crop": ["left": r.crop.left, "top": r.crop.top, "right": r.crop.right, "bottom": r.crop.bottom],
            "should_crop": r.crop.isSet, "fit_in": r.fitIn, "full": r.full, "adaptive": r.adaptive,
            "width": dim(r.width), "height": dim(r.height), "horizontal_flip": r.horizontalFlip,
            "vertical_flip": r.verticalFlip, "halign": r.halign.rawValue, "valign": r.valign.rawValue, "smart": r.smart,
            "filters": r.filters ?? NSNull(), "image": r.imageURL,
            // Each call Thumbor would run, with its parsed parameters (unknown and malformed ones skipped).
            "filter_calls": r.filterCalls.compactMap { call -> [String: Any]? in
                guard let params = ThumborFilter.thumborParams(call) else { return nil }
                return ["name": call.name, "params": params.map { value -> Any in
                    switch value {
                    case let .int(v): return v
                    case let .double(v): return v
                    case let .bool(v): return v
                    case let .string(v): return v
                    }
                }]
            },
        ]
        if let trim = r.trimOption {
            fields["trim_pos"] = trim.position
            fields["trim_tolerance"] = trim.tolerance
        }
        return fields
    }

    static func json(_ value: Any) -> String { JSONValue(value).text() }
}

struct ConfigKeys: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config-keys", abstract: "List every configuration key with its Thumbor equivalent.")
    func run() {
        for entry in ServiceConfiguration.keys {
            print("\(entry.key)\t\(entry.thumbor)\t\(entry.meaning)")
        }
        for entry in FileServerConfiguration.keys + EncodeConfiguration.keys + ClusterConfiguration.keys + LogConfiguration.keys {
            print("\(entry.key)\t-\t\(entry.meaning)")
        }
    }
}

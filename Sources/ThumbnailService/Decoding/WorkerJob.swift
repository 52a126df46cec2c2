import Imaging

/// What a decode worker is asked to do, sent as the options of a request (`WorkerFrames`), one
/// `key=value` per line: decode the source (sent down the pipe, or for a video excerpt a file the
/// server wrote), or list a video excerpt's packets.
public struct WorkerJob: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Decode the source: pixels (TIFF) and the loader's name.
        case decode
        /// List the first video stream's packets of the file at `path` (`VideoFrame.packets`).
        case packets
    }

    public var kind: Kind = .decode
    /// `still(pos)`: the video frame to take (nil: the first).
    public var still: String?
    /// A file written by the server (a sparse excerpt of a large video) to read instead of the request's bytes.
    public var path: String?
    /// For `packets`: only the opening packets (a first frame).
    public var firstOnly = false
    /// How small the decoded pixels may be handed back (nil: every pixel).
    public var shrink: ShrinkHint?
    /// For a video: its duration, frame rate and frame count too (`/meta` asks; it costs an `ffprobe`).
    public var facts = false

    public init(kind: Kind = .decode, still: String? = nil, path: String? = nil, firstOnly: Bool = false, shrink: ShrinkHint? = nil,
                facts: Bool = false) {
        self.kind = kind
        self.still = still
        self.path = path
        self.firstOnly = firstOnly
        self.shrink = shrink
        self.facts = facts
    }

    public var options: String {
        var lines: [String] = []
        if kind != .decode { lines.append("job=" + kind.rawValue) }
        if let still { lines.append("still=" + still) }
        if let path { lines.append("path=" + path) }
        if firstOnly { lines.append("first=1") }
        if let shrink { lines.append("shrink=" + shrink.option) }
        if facts { lines.append("facts=1") }
        return lines.joined(separator: "\n")
    }

    public init(options: String) {
        for line in options.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let value = String(line[line.index(after: equals)...])
            switch line[..<equals] {
            case "job": kind = Kind(rawValue: value) ?? .decode
            case "still": still = value
            case "path": path = value
            case "first": firstOnly = value == "1"
            case "shrink": shrink = ShrinkHint(option: value)
            case "facts": facts = value == "1"
            default: continue
            }
        }
    }

    /// Worker side: the job done on `source` (ignored when the job names a file).
    public func run(on source: UnsafeRawBufferPointer, maxPixels: Int, timeout: Double) throws(RenderError) -> IsolatedDecoding.Decoded {
        switch (kind, path) {
        case let (.packets, path?):
            return IsolatedDecoding.Decoded(tiff: try VideoFrame.packets(atPath: path, firstOnly: firstOnly, timeout: timeout), loader: "ffprobe")
        case (.packets, nil):
            throw .workerRefused("a packet listing needs a file")
        case let (.decode, path?):
            return try IsolatedDecoding.decodeVideo(atPath: path, maxPixels: maxPixels, timeout: timeout, still: still, facts: facts)
        case (.decode, nil):
            return try IsolatedDecoding.decode(source, maxPixels: maxPixels, timeout: timeout, still: still, shrink: shrink, facts: facts)
        }
    }
}

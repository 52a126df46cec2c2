/// What Pinhole reads of an OpenEXR header itself (the first part's): its channel names and its data
/// and display windows. libvips 8.14's loader reads through OpenEXR's RGBA interface, which returns
/// the data window (not the display window the picture is framed by) and only unprefixed R, G, B, A
/// channels (a file whose picture is in a layer, `rgba.R` or `beauty.R`, comes out black).
public struct EXRHeader: Sendable, Equatable {
    /// An inclusive pixel box (OpenEXR's `box2i`).
    public struct Window: Sendable, Equatable {
        public var minX: Int, minY: Int, maxX: Int, maxY: Int
        public var width: Int { maxX - minX + 1 }
        public var height: Int { maxY - minY + 1 }

        /// True when every pixel of `other` lies inside this window.
        public func covers(_ other: Window) -> Bool {
            minX <= other.minX && minY <= other.minY && maxX >= other.maxX && maxY >= other.maxY
        }
    }

    public var channels: [String]
    public var dataWindow: Window
    public var displayWindow: Window

    /// The header of the file's first part; nil when the bytes are not an OpenEXR header Pinhole can
    /// follow (truncated, windows missing or empty).
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 8, IsolatedDecoding.starts(bytes, with: [0x76, 0x2F, 0x31, 0x01]) else { return nil }
        var offset = 8
        var channels: [String]?
        var data: Window?, display: Window?
        func string() -> String? {
            guard let end = bytes[offset...].firstIndex(of: 0), end - offset < 256 else { return nil }
            defer { offset = end + 1 }
            return String(decoding: bytes[offset..<end], as: UTF8.self)
        }
        func int32(at position: Int) -> Int {
            Int(Int32(bitPattern: UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16
                                  | UInt32(bytes[position + 3]) << 24))
        }
        while offset < bytes.count {
            guard let name = string() else { return nil }
            if name.isEmpty { break }                       // the end of the (first part's) header
            guard let type = string(), offset + 4 <= bytes.count else { return nil }
            let size = int32(at: offset)
            offset += 4
            guard size >= 0, offset + size <= bytes.count else { return nil }
            let value = offset..<(offset + size)
            switch (name, type) {
            case ("channels", "chlist"):
                var list: [String] = []
                var position = value.lowerBound
                while position < value.upperBound, bytes[position] != 0 {
                    guard let end = bytes[position..<value.upperBound].firstIndex(of: 0) else { return nil }
                    list.append(String(decoding: bytes[position..<end], as: UTF8.self))
                    position = end + 1 + 16                  // pixel type, pLinear + 3 reserved, x and y sampling
                }
                channels = list
            case ("dataWindow", "box2i") where size == 16, ("displayWindow", "box2i") where size == 16:
                let window = Window(minX: int32(at: value.lowerBound), minY: int32(at: value.lowerBound + 4),
                                    maxX: int32(at: value.lowerBound + 8), maxY: int32(at: value.lowerBound + 12))
                if name == "dataWindow" { data = window } else { display = window }
            default:
                break
            }
            offset = value.upperBound
        }
        guard let channels, let data, let display, data.width > 0, data.height > 0, display.width > 0, display.height > 0 else { return nil }
        self.channels = channels
        self.dataWindow = data
        self.displayWindow = display
    }

    /// The layer holding the picture when the default layer has none (no unprefixed R, G, B or Y):
    /// `rgba` when there is one (any case), else the first layer with R, G and B. Nil when the default
    /// layer is the picture.
    public var pictureLayer: String? {
        let plain = Set(channels.filter { !$0.contains(".") })
        if plain.isSuperset(of: ["R", "G", "B"]) || plain.contains("Y") { return nil }
        var layers: [String] = []
        var seen: [String: Set<Substring>] = [:]
        for channel in channels {
            guard let dot = channel.lastIndex(of: ".") else { continue }
            let layer = String(channel[..<dot])
            if seen[layer] == nil { layers.append(layer) }
            seen[layer, default: []].insert(channel[channel.index(after: dot)...])
        }
        let pictures = layers.filter { seen[$0]!.isSuperset(of: ["R", "G", "B"]) }
        return pictures.first { $0.lowercased() == "rgba" } ?? pictures.first
    }

    /// Whether the picture (the default layer, or `layer`) has an alpha channel. libvips' loader gives
    /// four bands either way.
    public func hasAlpha(in layer: String?) -> Bool { channels.contains(layer.map { $0 + ".A" } ?? "A") }
}

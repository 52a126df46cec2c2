/// How a large MP4 or MOV (a multi-gigabyte ProRes master) is thumbnailed without being downloaded
/// whole: the container's boxes are walked through ranged reads (box headers only, across `mdat`), every
/// box but the media data is fetched (`moov` holds the index), and written at its own offset into a
/// sparse file as long as the source. FFmpeg's index then says which packets the wanted frame needs
/// (`VideoFrame.packets`); only those bytes are fetched and written, and FFmpeg takes the frame from the
/// excerpt as it would from the whole file. Matroska and WebM keep their index in the clusters
/// themselves, MXF in its partitions: they are read whole (and so are bounded by the source size limit).
public enum VideoExcerpt {
    /// Packets listed and fetched for a first frame: decoders with frame reordering (H.264, HEVC with
    /// B-frames) need the packets after the first keyframe before they hand the first frame out.
    public static let openingPackets = 32
    /// Packets after the wanted one fetched as well, for the same reordering.
    static let trailingPackets = 16
    /// Ranges closer than this are fetched as one (fewer requests for a few wasted bytes).
    static let mergeGap: Int64 = 256 << 10
    /// A file with more top-level boxes than this (a fragmented MP4 of thousands of fragments) is refused.
    public static let maxBoxes = 4096
    /// All boxes other than media data together (the index of a long master is megabytes, not more).
    public static let maxIndexBytes: Int64 = 256 << 20

    /// True for an ISO-BMFF or QuickTime file (the containers with an index the excerpt can follow).
    public static func isExcerptable(_ head: UnsafeRawBufferPointer) -> Bool {
        IsolatedDecoding.isVideo(head) && !IsolatedDecoding.starts(head, with: [0x1A, 0x45, 0xDF, 0xA3])
            && !IsolatedDecoding.starts(head, with: [0x06, 0x0E, 0x2B, 0x34])
    }

    /// A top-level box: its type, where it starts and how long it is (header included).
    public struct Box: Sendable, Equatable {
        public var type: String
        public var offset: Int64
        public var size: Int64

        public var end: Int64 { offset + size }
        /// Media data: skipped by the walk, fetched packet by packet.
        public var isMediaData: Bool { type == "mdat" }
    }

    /// The box whose header starts `header` (at least 8 bytes; 16 for a 64-bit size) at `offset` of a
    /// file of `length` bytes; nil when the header is malformed (a size below the header's own, or past
    /// the end of the file). A size of 0 means "to the end of the file".
    public static func box(header: UnsafeRawBufferPointer, at offset: Int64, length: Int64) -> Box? {
        guard header.count >= 8 else { return nil }
        var size = Int64(header.prefix(4).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let type = String(decoding: header[4..<8], as: UTF8.self)
        var headerSize: Int64 = 8
        if size == 1 {
            guard header.count >= 16 else { return nil }
            let large = header[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard large <= UInt64(Int64.max) else { return nil }
            size = Int64(large)
            headerSize = 16
        } else if size == 0 {
            size = length - offset
        }
        guard size >= headerSize, offset + size <= length,
              type.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return Box(type: type, offset: offset, size: size)
    }

    /// A video packet from FFmpeg's index.
    public struct Packet: Sendable, Equatable {
        public var time: Double
        public var position: Int64
        public var size: Int64
        public var isKey: Bool

        public init(time: Double, position: Int64, size: Int64, isKey: Bool) {
            self.time = time
            self.position = position
            self.size = size
            self.isKey = isKey
        }
    }

    /// What FFmpeg's index says of a video: its first stream's packets, in decode order, and the file's
    /// duration (nil when not known).
    public struct Listing: Sendable, Equatable {
        public var packets: [Packet]
        public var duration: Double?
    }

    /// A listing from `ffprobe -of compact=p=0` lines (`pts_time=0.040000|dts_time=…|size=…|pos=…|flags=K__`,
    /// then the format's `duration=45.000000`). A packet without a place or a size is skipped; without a
    /// presentation time it takes its decode time.
    public static func listing(fromFFprobe text: String) -> Listing {
        var listing = Listing(packets: [], duration: nil)
        for line in text.split(separator: "\n") {
            var fields: [Substring: Substring] = [:]
            for field in line.split(separator: "|") {
                guard let equals = field.firstIndex(of: "=") else { continue }
                fields[field[..<equals]] = field[field.index(after: equals)...]
            }
            if fields.count == 1, let duration = fields["duration"].flatMap({ Double($0) }), duration.isFinite, duration > 0 {
                listing.duration = duration
                continue
            }
            guard let position = fields["pos"].flatMap({ Int64($0) }), let size = fields["size"].flatMap({ Int64($0) }),
                  position >= 0, size > 0,
                  let time = fields["pts_time"].flatMap({ Double($0) }) ?? fields["dts_time"].flatMap({ Double($0) }) else { continue }
            listing.packets.append(Packet(time: time, position: position, size: size, isKey: fields["flags"]?.hasPrefix("K") ?? false))
        }
        return listing
    }

    /// Seconds from `still(pos)`'s position (`12.5`, `01:02.5`, `1:02:03`, negative from the end).
    public static func seconds(_ position: String) -> Double? {
        let negative = position.hasPrefix("-")
        var total = 0.0
        for part in (negative ? position.dropFirst() : Substring(position)).split(separator: ":", omittingEmptySubsequences: false) {
            guard let value = Double(part), value >= 0 else { return nil }
            total = total * 60 + value
        }
        return negative ? -total : total
    }

    /// The byte ranges (merged, in file order) holding the packets FFmpeg decodes for the frame at
    /// `position` (nil: the first): from the last keyframe at or before the wanted time, through the
    /// wanted packet and a few more. A time from the end counts from the file's duration, as `-sseof`
    /// does (without one, from the last packet's end). When the wanted time is past the end, the last
    /// packets are given: FFmpeg then finds no frame there and says so, as it does on the whole file.
    public static func ranges(for listing: Listing, position: String?) -> [Range<Int64>] {
        let packets = listing.packets
        guard !packets.isEmpty else { return [] }
        let byTime = packets.indices.sorted { packets[$0].time < packets[$1].time }
        let start = packets[byTime[0]].time
        let last = packets[byTime[byTime.count - 1]].time
        let frameTime = packets.count > 1 ? (last - start) / Double(packets.count - 1) : 0
        var target = start
        if let position, let offset = seconds(position) {
            target = offset < 0 ? start + (listing.duration ?? (last + frameTime - start)) + offset : start + offset
        }
        // The packet showing at `target`, in decode order; then back to its keyframe.
        let shown = byTime.last { packets[$0].time <= target + 1e-6 } ?? byTime[0]
        // Intra-only codecs (ProRes, DNxHD: every packet a keyframe) neither reorder nor refer to other
        // frames: the wanted packet and its neighbours (against rounding of times) are enough.
        if packets.allSatisfy(\.isKey) {
            let around = packets[max(0, shown - 1)...min(packets.count - 1, shown + 1)]
            return merge(around.map { $0.position..<($0.position + $0.size) }.sorted { $0.lowerBound < $1.lowerBound })
        }
        var first = shown
        while first > 0 && !packets[first].isKey { first -= 1 }
        // FFmpeg's seek lands on the keyframe before the time it is given; a keyframe just before ours
        // is kept too, so that rounding of times cannot leave FFmpeg's choice outside the excerpt.
        if first > 0, position != nil {
            var previous = first - 1
            while previous > 0 && !packets[previous].isKey { previous -= 1 }
            if packets[first].time - packets[previous].time < 1.0 { first = previous }
        }
        let end = min(packets.count - 1, max(shown, first) + trailingPackets)
        let wanted = packets[first...end].map { $0.position..<($0.position + $0.size) }.sorted { $0.lowerBound < $1.lowerBound }
        return merge(wanted)
    }

    /// Ranges joined where they touch or lie within `mergeGap` of each other.
    static func merge(_ sorted: [Range<Int64>]) -> [Range<Int64>] {
        var merged: [Range<Int64>] = []
        for range in sorted {
            if let previous = merged.last, range.lowerBound <= previous.upperBound + mergeGap {
                merged[merged.count - 1] = previous.lowerBound..<max(previous.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}

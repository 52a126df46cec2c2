import Testing
@testable import Imaging

@Suite("Video excerpts: box headers, FFmpeg's packet index, and the byte ranges a frame needs")
struct VideoExcerptTests {
    func box(_ bytes: [UInt8], at offset: Int64 = 0, length: Int64 = 1 << 40) -> VideoExcerpt.Box? {
        bytes.withUnsafeBytes { VideoExcerpt.box(header: $0, at: offset, length: length) }
    }

    @Test func boxHeaders() {
        // 32-bit size, 64-bit size (size field 1), "to the end of the file" (size field 0).
        #expect(box([0, 0, 0, 32] + Array("ftyp".utf8)) == .init(type: "ftyp", offset: 0, size: 32))
        let large: [UInt8] = [0, 0, 0, 1] + Array("mdat".utf8) + [0, 0, 0, 1, 0, 0, 0, 0]
        #expect(box(large, at: 40) == .init(type: "mdat", offset: 40, size: 1 << 32))
        #expect(box([0, 0, 0, 0] + Array("mdat".utf8), at: 100, length: 1000) == .init(type: "mdat", offset: 100, size: 900))
        // Malformed: smaller than its header, past the end, a 64-bit size cut off, a type that is not text.
        #expect(box([0, 0, 0, 4] + Array("moov".utf8)) == nil)
        #expect(box([0, 0, 1, 0] + Array("moov".utf8), at: 0, length: 100) == nil)
        #expect(box([0, 0, 0, 1] + Array("mdat".utf8)) == nil)
        #expect(box([0, 0, 0, 16, 0, 0, 0, 0]) == nil)
    }

    @Test func packetsFromFFprobe() {
        let listing = """
        pts_time=0.000000|dts_time=-0.083333|size=60475|pos=48|flags=K_
        pts_time=0.166667|dts_time=-0.041667|size=5433|pos=60523|flags=__
        pts_time=N/A|dts_time=0.5|size=10|pos=70000|flags=__
        pts_time=1.0|dts_time=1.0|size=N/A|pos=80000|flags=K_
        duration=2.000000
        """
        #expect(VideoExcerpt.listing(fromFFprobe: listing) == .init(packets: [
            .init(time: 0, position: 48, size: 60475, isKey: true),
            .init(time: 0.166667, position: 60523, size: 5433, isKey: false),
            .init(time: 0.5, position: 70000, size: 10, isKey: false),
        ], duration: 2))
    }

    @Test func stillPositions() {
        #expect(VideoExcerpt.seconds("12.5") == 12.5)
        #expect(VideoExcerpt.seconds("01:02.5") == 62.5)
        #expect(VideoExcerpt.seconds("1:02:03") == 3723)
        #expect(VideoExcerpt.seconds("-0.5") == -0.5)
        #expect(VideoExcerpt.seconds("a:1") == nil)
    }

    /// A long-GOP stream: a keyframe every 10 packets, 0.1 s apart, each 1000 bytes, 10 bytes apart on disk.
    static let longGOP = VideoExcerpt.Listing(packets: (0..<100).map { i in
        VideoExcerpt.Packet(time: Double(i) / 10, position: Int64(i) * 1010, size: 1000, isKey: i % 10 == 0)
    }, duration: nil)

    @Test func rangesFromTheKeyframeThroughTheReorderWindow() {
        // The first frame: its keyframe and the 16 packets after it, merged into one range.
        #expect(VideoExcerpt.ranges(for: Self.longGOP, position: nil) == [0..<(16 * 1010 + 1000)])
        // At 5.35 s the packet showing is #53; its keyframe #50, and the one before (1 s earlier) is not added.
        #expect(VideoExcerpt.ranges(for: Self.longGOP, position: "5.35") == [(50 * 1010)..<(69 * 1010 + 1000)])
        // From the end: the last packet ends at 9.9 + 0.1 s; 0.5 s before is #95 (keyframe #90).
        #expect(VideoExcerpt.ranges(for: Self.longGOP, position: "-0.5") == [(90 * 1010)..<(99 * 1010 + 1000)])
        // With the file's duration known (audio running longer, say), -sseof counts from there: #75.
        var longer = Self.longGOP
        longer.duration = 8
        #expect(VideoExcerpt.ranges(for: longer, position: "-0.5") == [(70 * 1010)..<(91 * 1010 + 1000)])
    }

    @Test func intraOnlyStreamsNeedTheWantedPacketAlone() {
        // Packets 3 KB apart: the wanted one and its neighbours, merged.
        let prores = VideoExcerpt.Listing(packets: (0..<100).map { i in
            VideoExcerpt.Packet(time: Double(i) / 24, position: Int64(i) * 40_000, size: 37_000, isKey: true)
        }, duration: nil)
        #expect(VideoExcerpt.ranges(for: prores, position: nil) == [0..<(40_000 + 37_000)])
        #expect(VideoExcerpt.ranges(for: prores, position: "1.5") == [(35 * 40_000)..<(37 * 40_000 + 37_000)])
    }

    @Test func rangesFarApartStayApart() {
        let merged = VideoExcerpt.merge([0..<10, 20..<30, (1 << 20)..<((1 << 20) + 5)])
        let expected: [Range<Int64>] = [0..<30, (1 << 20)..<((1 << 20) + 5)]
        #expect(merged == expected)
    }

    @Test func videoFactsFromFFprobe() {
        let mp4 = VideoFacts(ffprobeFlat: """
        streams.stream.0.r_frame_rate="24/1"
        streams.stream.0.avg_frame_rate="24/1"
        streams.stream.0.duration="0.500000"
        streams.stream.0.nb_frames="12"
        format.duration="0.500000"
        """)
        #expect(mp4 == VideoFacts(duration: 0.5, frameRate: 24, frameCount: 12))
        // Matroska: no stream duration or count; the file's duration x the rate.
        let mkv = VideoFacts(ffprobeFlat: """
        streams.stream.0.r_frame_rate="30000/1001"
        streams.stream.0.avg_frame_rate="30000/1001"
        streams.stream.0.duration="N/A"
        streams.stream.0.nb_frames="N/A"
        format.duration="10.010000"
        """)
        #expect(mkv?.frameCount == 300 && mkv?.duration == 10.01)
        #expect(VideoFacts(ffprobeFlat: "format.duration=\"1.0\"") == nil)
        let line = VideoFacts(duration: 45, frameRate: 24, frameCount: 1080).line
        #expect(VideoFacts(line: Substring(line)) == VideoFacts(duration: 45, frameRate: 24, frameCount: 1080))
    }
}

import Foundation
import Testing
@testable import ReviewEncoding

@Suite struct RenditionPlanTests {
    @Test func renditionsFitTheirBoxesWithEvenSides() {
        let plan = RenditionPlan.video(display: (3840, 2160), sizes: [1080, 1440, 2160])
        #expect(plan.map(\.name) == ["ftrackreview-mp4", "ftrackreview-mp4-1080", "ftrackreview-mp4-1440", "ftrackreview-mp4-2160"])
        #expect(plan.map(\.width) == [1280, 1920, 2560, 3840])
        #expect(plan.map(\.height) == [720, 1080, 1440, 2160])
    }

    @Test func largerRenditionsOnlyForLargerSourcesAndOnlyWhenConfigured() {
        #expect(RenditionPlan.video(display: (1280, 720), sizes: [1080]).map(\.name) == ["ftrackreview-mp4"])
        #expect(RenditionPlan.video(display: (1920, 1080), sizes: [1080, 1440]).map(\.name) == ["ftrackreview-mp4", "ftrackreview-mp4-1080"])
        #expect(RenditionPlan.video(display: (3840, 2160), sizes: []).map(\.name) == ["ftrackreview-mp4"])
        // A tall source larger than 1280x720 only in height still gets the 1080 rendition.
        #expect(RenditionPlan.video(display: (1080, 1920), sizes: [1080]).map(\.name) == ["ftrackreview-mp4", "ftrackreview-mp4-1080"])
    }

    @Test func oddAndSmallSourcesAreNeverEnlargedAndBecomeEven() {
        let odd = RenditionPlan.fit((853, 479), into: RenditionPlan.baseBox, even: true)
        #expect(odd.width == 854 && odd.height == 480)
        let portrait = RenditionPlan.fit((1080, 1920), into: RenditionPlan.baseBox, even: true)
        #expect(portrait.width == 406 && portrait.height == 720)
        let tiny = RenditionPlan.fit((3, 1), into: RenditionPlan.baseBox, even: true)
        #expect(tiny.width == 4 && tiny.height == 2)
    }

    @Test func metadataIsWhatFtrackReads() throws {
        let meta = RenditionPlan.videoMeta(frames: 150, frameRate: 25, width: 1280, height: 720)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(meta.utf8)) as? [String: Any])
        #expect(object["frameIn"] as? Int == 0 && object["frameOut"] as? Int == 150)
        #expect(object["frameRate"] as? Int == 25 && object["width"] as? Int == 1280 && object["height"] as? Int == 720)
        #expect(RenditionPlan.number(30000.0 / 1001) == "29.97")
        #expect(RenditionPlan.number(23.976023) == "23.976")
        let image = try #require(try JSONSerialization.jsonObject(with: Data(RenditionPlan.imageMeta(width: 1920, height: 1080).utf8)) as? [String: Any])
        #expect(image["format"] as? String == "image" && image["width"] as? Int == 1920)
    }
}

@Suite struct FFmpegArgumentsTests {
    func arguments(_ facts: MediaFacts, sizes: [(Int, Int)] = [(1280, 720)]) -> [String] {
        FFmpegArguments.mp4(source: "/in.mov", outputs: sizes.enumerated().map { .init(path: "/out\($0.offset).mp4", width: $0.element.0, height: $0.element.1) },
                            progress: "/p.txt", facts: facts, configuration: EncodeConfiguration())
    }

    func filters(_ facts: MediaFacts) -> String {
        let list = arguments(facts)
        return list[list.firstIndex(of: "-filter_complex")! + 1]
    }

    @Test func everyRenditionComesFromOneDecode() {
        let facts = MediaFacts(formatName: "mov", codec: "prores", width: 3840, height: 2160, rFrameRate: "24/1", averageFrameRate: "24/1")
        let list = arguments(facts, sizes: [(1280, 720), (1920, 1080)])
        #expect(list.filter { $0 == "-i" }.count == 1)
        let graph = list[list.firstIndex(of: "-filter_complex")! + 1]
        #expect(graph.hasPrefix("[0:v:0]split=2[s0][s1];[s0]scale=1280:720:"))
        #expect(graph.contains(";[s1]scale=1920:1080:") && graph.hasSuffix("format=yuv420p[v1]"))
        #expect(list.filter { $0 == "libx264" }.count == 2 && list.filter { $0 == "+faststart" }.count == 2)
        #expect(Array(list.suffix(1)) == ["/out1.mp4"] && list.contains("/out0.mp4"))
    }

    @Test func untaggedSourcesAreReadWithTheMatrixTheirSizeImplies() {
        var facts = MediaFacts(formatName: "mov", codec: "prores", width: 1920, height: 1080, rFrameRate: "25/1", averageFrameRate: "25/1")
        facts.pixelFormat = "yuv422p10le"
        #expect(filters(facts).contains(":in_color_matrix=bt709:out_color_matrix=bt709"))
        facts.height = 576
        #expect(filters(facts).contains(":in_color_matrix=bt601:"))
        facts.colorSpace = "bt470bg"     // tagged: swscale follows the tag
        #expect(!filters(facts).contains("in_color_matrix"))
        facts.colorSpace = nil
        facts.pixelFormat = "gbrp10le"   // RGB has no YUV matrix to guess
        #expect(!filters(facts).contains("in_color_matrix"))
    }

    @Test func audioIsStereoAACOnlyWhenTheSourceHasAudio() {
        var facts = MediaFacts(formatName: "mp4", codec: "h264", width: 640, height: 360, rFrameRate: "30/1", averageFrameRate: "30/1")
        let silent = arguments(facts)
        #expect(!silent.contains("-c:a") && !silent.contains("0:a:0"))
        facts.audioChannels = 6
        let loud = arguments(facts)
        #expect(loud.contains("aac") && loud[loud.firstIndex(of: "-ac")! + 1] == "2" && loud.contains("+faststart"))
    }
}

@Suite struct MediaFactsTests {
    static let probe = #"""
    {"streams": [
      {"codec_type": "video", "codec_name": "h264", "width": 720, "height": 576, "sample_aspect_ratio": "64:45",
       "r_frame_rate": "25/1", "avg_frame_rate": "25/1", "nb_frames": "50", "duration": "2.000000", "pix_fmt": "yuv420p"},
      {"codec_type": "audio", "codec_name": "aac", "channels": 6},
      {"codec_type": "video", "codec_name": "mjpeg", "width": 300, "height": 300, "disposition": {"attached_pic": 1}}
    ], "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.01"}}
    """#

    @Test func probeIsReadWithAnamorphicDisplayAndAudio() throws {
        let facts = try #require(MediaFacts.parse(Data(Self.probe.utf8)))
        #expect(facts.displaySize.width == 1024 && facts.displaySize.height == 576)
        #expect(facts.audioChannels == 6 && facts.frameCount == 50 && facts.duration == 2)
        #expect(facts.outputFrameRate == "25/1" && !facts.isVariableFrameRate)
    }

    @Test func variableRatesSnapToTheStandardRateNearTheirAverage() {
        var facts = MediaFacts(formatName: "mp4", codec: "h264", width: 640, height: 360, rFrameRate: "60/1", averageFrameRate: "2997/100")
        #expect(facts.isVariableFrameRate && facts.outputFrameRate == "30000/1001")
        facts.averageFrameRate = "1250/77"   // 16.23 fps: no standard rate near it
        #expect(facts.outputFrameRate == "16.234")
    }

    @Test func rotatedVideoSwapsItsDisplayedSides() throws {
        let json = #"{"streams": [{"codec_type": "video", "width": 1920, "height": 1080, "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "side_data_list": [{"rotation": -90}]}], "format": {}}"#
        let facts = try #require(MediaFacts.parse(Data(json.utf8)))
        #expect(facts.rotation == 270 && facts.displaySize.width == 1080 && facts.displaySize.height == 1920)
    }

    @Test func withoutAVideoStreamThereAreNoFacts() {
        #expect(MediaFacts.parse(Data(#"{"streams": [{"codec_type": "audio", "channels": 2}], "format": {}}"#.utf8)) == nil)
        #expect(MediaFacts.parse(Data("not json".utf8)) == nil)
    }
}

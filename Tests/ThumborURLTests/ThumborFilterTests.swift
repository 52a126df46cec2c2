import Testing
@testable import ThumborURL

@Suite("Thumbor filter grammar")
struct ThumborFilterTests {
    @Test func typedCallsInURLOrder() {
        let filters = ThumborFilter.parseList("quality(70):blur(3):focal(10x20:30x40):unknown(1):rgb(1,-2,3):format(WEBP):fill(red,true)")
        #expect(filters == [.quality(70), .blur(radius: 3, sigma: 0), .focal(left: 10, top: 20, right: 30, bottom: 40),
                            .rgb(red: 1, green: -2, blue: 3), .format("webp"), .fill(color: "red", fillTransparent: true)])
        #expect(filters.map(\.phase) == [.postTransform, .postTransform, .preLoad, .postTransform, .postTransform, .postTransform])
    }

    @Test func malformedCallsAreSkipped() {
        #expect(ThumborFilter.parseList("quality(-1):blur(0):rotate(a):sharpen(1,2,yes):rgb(1,2)").isEmpty)
        #expect(ThumborFilter.parseList("format(bmp)") == [.format(nil)])
    }

    @Test func optionalArgumentsAndQuotes() {
        #expect(ThumborFilter.parseList("noise(10)") == [.noise(amount: 10, seed: 0)])
        #expect(ThumborFilter.parseList("round_corner(20|30,1,2,3,true)")
                == [.roundCorner(horizontal: 20, vertical: 30, red: 1, green: 2, blue: 3, transparent: true)])
        #expect(ThumborFilter.parseList("watermark('a,b.png',repeat,-10p,50)")
                == [.watermark(url: "a,b.png", x: "repeat", y: "-10p", alpha: 50, widthRatio: nil, heightRatio: nil)])
        #expect(ThumborFilter.parseList("convolution(1;2;1,3)") == [.convolution(matrix: [1, 2, 1], columns: 3, normalize: true)])
        #expect(ThumborFilter.parseList("curve([(0,0),(255,255)],[],[],[])")
                == [.curve(all: [.init(x: 0, y: 0), .init(x: 255, y: 255)], red: [], green: [], blue: [])])
    }

    @Test func enabledSetFilters() {
        #expect(ThumborFilter.parseList("quality(70):blur(3)", enabled: ["blur"]) == [.blur(radius: 3, sigma: 0)])
        // Thumbor's 30 built-in filters, and thumbor-video-engine's still() (what `thumbnails.filters` accepts).
        #expect(ThumborFilter.builtinNames.count == 31 && ThumborFilter.builtinNames.contains("still"))
    }
}

@Suite("extract_focal: the crop of a nested Thumbor URL")
struct ExtractFocalTests {
    @Test func nestedURLs() {
        let found = ExtractFocal.resolve(image: "localhost:8888/unsafe/1800x100:2500x700/photo.jpg")
        #expect(found?.image == "photo.jpg" && found?.crop == CropBox(left: 1800, top: 100, right: 2500, bottom: 700))
        let twice = ExtractFocal.resolve(image: "http://a.example/unsafe/fit-in/300x300/b.example/unsafe/1x2:3x4/img.png")
        #expect(twice?.image == "img.png" && twice?.crop == CropBox(left: 1, top: 2, right: 3, bottom: 4))
        #expect(ExtractFocal.resolve(image: "localhost:8888/300x200/photo.jpg") == nil)     // neither signed nor unsafe
        #expect(ExtractFocal.resolve(image: "photo.jpg") == nil)
    }

    /// thumbor-video-engine's still(pos): seconds or [HH:]MM:SS[.frac], optionally negative; anything
    /// else does not match and the call is skipped.
    @Test func stillPositions() {
        #expect(ThumborFilter.parseList("still(5)") == [.still("5")])
        #expect(ThumborFilter.parseList("still(1.5)") == [.still("1.5")])
        #expect(ThumborFilter.parseList("still(00:01.5)") == [.still("00:01.5")])
        #expect(ThumborFilter.parseList("still(01:02:03.25)") == [.still("01:02:03.25")])
        #expect(ThumborFilter.parseList("still(-0.2)") == [.still("-0.2")])
        #expect(ThumborFilter.parseList("still(abc)") == [])
        #expect(ThumborFilter.still("1").phase == .preLoad)
    }
}

/// Inputs the fuzzer (`scripts/fuzz`) found; each once crashed, hung or mis-verified a request.
@Suite("Fuzzer findings")
struct FuzzerFindingTests {
    @Test func focalWithACombiningMarkDoesNotCrash() {
        // `4` followed by U+034A: the capture ends inside a Character (a force unwrap trapped).
        let filters = ThumborFilter.parseList("focal(10x20:30x4\u{034A})")
        #expect(filters == [.focal(left: 10, top: 20, right: 30, bottom: 4)])
    }

    @Test func aLineSeparatorInThePathIsRefusedAtOnce() {
        // The backtracking grammar took seconds on such a path (it arrives decoded through extract_focal).
        let nested = String(repeating: "trim/10x10:20x20/fit-in/1x1/left/top/smart/filters:a()/", count: 40)
        let started = ContinuousClock.now
        #expect(throws: ThumborPath.ParseError.self) { try ThumborPath.parse("/unsafe/\(nested)\na.jpg") }
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func aSignedPathStartingWithACombiningMarkVerifies() {
        let signed = "\u{0301}300x200/a.jpg"
        let hash = URLSigner(key: "k").signature(for: signed)
        #expect(ThumborPath.signedPortion(ofRawPath: "/\(hash)/\(signed)", hash: hash) == signed)
    }
}

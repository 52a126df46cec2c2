import Testing
@testable import ThumborURL

@Suite("URL grammar (spec §1)")
struct GrammarTests {
    @Test func fullURL() throws {
        let r = try ThumborPath.parse("/unsafe/debug/meta/trim:bottom-right:12/10x20:300x400/adaptive-full-fit-in/-300x-200/left/top/smart/filters:quality(70):blur(2)/path/to/a.jpg")
        #expect(r.unsafe && r.hash == nil && r.debug && r.meta)
        #expect(r.trim == "trim:bottom-right:12")
        #expect(r.trimOption == TrimOption(position: "bottom-right", tolerance: 12))
        #expect(r.crop == CropBox(left: 10, top: 20, right: 300, bottom: 400))
        #expect(r.adaptive && r.full && r.fitIn)
        #expect(r.horizontalFlip && r.verticalFlip)
        #expect(r.width == .pixels(300) && r.height == .pixels(200))
        #expect(r.halign == .left && r.valign == .top && r.smart)
        #expect(r.filters == "quality(70):blur(2)")
        #expect(r.image == "path/to/a.jpg")
    }

    @Test("misplaced tokens become part of the image", arguments: [
        ("/unsafe/300x200/meta/a.jpg", "meta/a.jpg"),
        ("/unsafe/smart/300x200/a.jpg", "300x200/a.jpg"),
        ("/unsafe/300x200", "300x200"),
        ("/unsafe/top/left/a.jpg", "left/a.jpg"),
        ("/unsafe/FIT-IN/300X200/a.jpg", "FIT-IN/300X200/a.jpg"),
        ("/unsafe/Smart/a.jpg", "Smart/a.jpg"),
        ("/unsafe/300%20x200/a.jpg", "300 x200/a.jpg"),
    ])
    func backtracking(path: String, image: String) throws {
        let r = try ThumborPath.parse(path)
        #expect(r.unsafe)
        #expect(r.image == image)
    }

    @Test func firstSegmentIsTheHash() throws {
        var r = try ThumborPath.parse("/300x200/a.jpg")
        #expect(r.hash == "300x200" && !r.unsafe && r.image == "a.jpg" && r.width == .pixels(0))
        r = try ThumborPath.parse("/a.jpg")
        #expect(r.hash == nil && !r.unsafe && r.image == "a.jpg")
        r = try ThumborPath.parse("//unsafe/a.jpg")
        #expect(r.hash == "/unsafe" && !r.unsafe)
        r = try ThumborPath.parse("/unsafe/abc=/a.jpg")
        #expect(r.unsafe && r.image == "abc=/a.jpg")
    }

    @Test("sizes", arguments: [
        ("/unsafe/x/a.jpg", Dimension.pixels(0), Dimension.pixels(0), false, false),
        ("/unsafe/-x-/a.jpg", .pixels(0), .pixels(0), true, true),
        ("/unsafe/-0x-0/a.jpg", .pixels(0), .pixels(0), true, true),
        ("/unsafe/0300x0020/a.jpg", .pixels(300), .pixels(20), false, false),
        ("/unsafe/origx100/a.jpg", .orig, .pixels(100), false, false),
        ("/unsafe/-origx-orig/a.jpg", .orig, .orig, true, true),
        ("/unsafe/99999999999999999999x1/a.jpg", .pixels(Int.max), .pixels(1), false, false),
    ])
    func sizes(path: String, width: Dimension, height: Dimension, hflip: Bool, vflip: Bool) throws {
        let r = try ThumborPath.parse(path)
        #expect(r.width == width && r.height == height)
        #expect(r.horizontalFlip == hflip && r.verticalFlip == vflip)
    }

    @Test func trimQuirks() throws {
        #expect(try ThumborPath.parse("/unsafe/trim/a.jpg").trimOption == TrimOption(position: "top-left", tolerance: 0))
        let numeric = try ThumborPath.parse("/unsafe/trim:10/a.jpg").trimOption
        #expect(numeric == TrimOption(position: "10", tolerance: 0))
        #expect(numeric?.corner == .bottomRight)
        #expect(try ThumborPath.parse("/unsafe/trim:top-left/a.jpg").trimOption?.corner == .topLeft)
    }

    @Test func filtersGroupIsLazy() throws {
        #expect(try ThumborPath.parse("/unsafe/filters:blur(2)/folder(1)/a.jpg").filters == "blur(2)")
        let r = try ThumborPath.parse("/unsafe/filters:a(5)x/y)/i.jpg")
        #expect(r.filters == "a(5)x/y)" && r.image == "i.jpg")
        #expect(try ThumborPath.parse("/unsafe/filters:watermark(http%3A%2F%2Fx%2Fw.png,0,0,0)/a.jpg").filters == "watermark(http://x/w.png,0,0,0)")
    }

    @Test func filterCalls() {
        let calls = FilterCall.parseList("quality(70):focal(1x2:3x4):nofilter:blur(2,1)")
        #expect(calls.map(\.name) == ["quality", "focal", "nofilter:blur"])
        #expect(calls[1].arguments == "1x2:3x4")
    }

    @Test("image part is re-quoted as Thumbor's image_url (spec §1.5)", arguments: [
        ("http://x.com/a.jpg", "http%3A//x.com/a.jpg"),
        ("http%3A%2F%2Fx.com%2Fa.jpg", "http%3A//x.com/a.jpg"),
        ("a+b.jpg", "a%2Bb.jpg"),
        ("%c3%bc.jpg", "%C3%BC.jpg"),
        ("a%2520b.jpg", "a%2520b.jpg"),
        ("a~b_c-d.e.jpg", "a~b_c-d.e.jpg"),
    ])
    func imageURL(image: String, expected: String) throws {
        #expect(try ThumborPath.parse("/unsafe/\(image)").imageURL == expected)
    }

    @Test func invalidUTF8IsAnError() throws {
        #expect(throws: ThumborPath.ParseError.invalidUTF8(segment: "image")) { try ThumborPath.parse("/unsafe/%FF.jpg") }
        #expect(throws: ThumborPath.ParseError.noImage) { try ThumborPath.parse("") }
        // As in Thumbor, "/" alone matches with image "/" (and then fails the hash/unsafe gate).
        #expect(try ThumborPath.parse("/").image == "/")
    }

    @Test func percentDecodingLeavesMalformedEscapes() {
        #expect(PercentEncoding.decode("a%2") == "a%2")
        #expect(PercentEncoding.decode("a%G1b") == "a%G1b")
        #expect(PercentEncoding.decode("a+b%20c") == "a+b c")
    }
}

import Testing
@testable import FileServer

/// Uploads that arrive without a type (or as application/octet-stream) are typed from their first bytes:
/// what decides whether they get thumbnails and review renditions.
@Suite struct ContentSnifferTests {
    func sniff(_ head: [UInt8]) -> String? { ContentSniffer.sniff(head + Array(repeating: 0, count: 32)) }
    func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func videoContainersAreRecognised() {
        #expect(sniff([0, 0, 0, 0x14] + ascii("ftypqt  ")) == "video/quicktime")
        #expect(sniff([0, 0, 0, 0x20] + ascii("ftypisom")) == "video/mp4")
        // QuickTime written before `ftyp` existed opens with its movie, data or padding atom.
        #expect(sniff([0, 0, 0, 0x08] + ascii("wide")) == "video/quicktime")
        #expect(sniff([0, 0, 0x10, 0] + ascii("moov")) == "video/quicktime")
        #expect(sniff(ascii("RIFF") + [0x10, 0, 0, 0] + ascii("AVI LIST")) == "video/x-msvideo")
        #expect(sniff([0x06, 0x0E, 0x2B, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0D, 0x01, 0x02]) == "application/mxf")
        #expect(sniff([0x1A, 0x45, 0xDF, 0xA3]) == "video/webm")
    }

    @Test func aWaveFileIsNotAVideo() {
        #expect(sniff(ascii("RIFF") + [0x10, 0, 0, 0] + ascii("WAVEfmt ")) == nil)
    }

    @Test func declaredTypesWinOverSniffing() {
        #expect(ContentSniffer.contentType(declared: "video/mp4", head: ascii("SDPX"), fileName: nil) == "video/mp4")
        #expect(ContentSniffer.contentType(declared: "application/octet-stream", head: ascii("SDPX"), fileName: nil) == "image/x-dpx")
    }
}

import Foundation
import ServiceSupport
import Testing

/// What operators read: errors in plain words, never a Swift type path.
@Suite("Operator text: errors without type paths")
struct OperatorTextTests {
    enum Inner: Error { case connectTimeout }
    enum Outer: Error { case failed(Inner), wrapped(Detail) }
    struct Detail: Error { var operation: String }
    struct Worded: Error, CustomStringConvertible { var description: String { "the disk is full" } }

    /// Module.Type.case, as `String(describing:)` prints a nested enum.
    nonisolated(unsafe) static let typePath: Regex<Substring> = #/\b[A-Z]\w*\.[A-Z]\w*\.[a-z]\w*/#.wordBoundaryKind(.simple)

    @Test func nestedEnumsLoseTheirTypePaths() {
        let raw = String(describing: Outer.failed(.connectTimeout))
        #expect(raw.contains(Self.typePath), "the pattern this guards against: \(raw)")
        let plain = OperatorText.describe(Outer.failed(.connectTimeout))
        #expect(!plain.contains(Self.typePath))
        #expect(plain == "failed(connect timeout)")
        #expect(!OperatorText.describe(Outer.wrapped(Detail(operation: "load"))).contains("ServiceSupportTests."))
    }

    @Test func errorsWithWordsKeepThem() {
        #expect(OperatorText.describe(Worded()) == "the disk is full")
        #expect(OperatorText.describe(CocoaError(.fileNoSuchFile)).contains("ServiceSupport") == false)
    }

    @Test func aDescriptionThatIsATypeAndCaseBecomesWords() {
        #expect(OperatorText.plain("HTTPClientError.connectTimeout") == "connect timeout")
        #expect(OperatorText.plain("source unreachable: NIOCore.ChannelError.ioOnClosedChannel") == "source unreachable: io on closed channel")
        #expect(OperatorText.plain("undecodable(Vips.VipsError(operation: \"load\"))") == "undecodable(VipsError(operation: \"load\"))")
    }

    @Test func fileNamesAreLeftAlone() {
        for text in ["cannot read 'Shots/A.exr'", "Render.v001.exr", "e.g. 1.5 s", "plate.DPX not found"] {
            #expect(OperatorText.plain(text) == text)
        }
    }

    @Test func identifiersBecomeWords() {
        #expect(OperatorText.words("connectTimeout") == "connect timeout")
        #expect(OperatorText.words("remote_connection_closed") == "remote connection closed")
        #expect(OperatorText.words("tlsHandshakeTimeout") == "tls handshake timeout")
    }
}

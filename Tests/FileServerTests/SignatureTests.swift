import Foundation
import Testing
@testable import FileServer
import ServiceSupport

@Suite("File-server URL signatures (ftrack.md §3)")
struct SignatureTests {
    let secret = "service-secret-0123456789-0123456789-abcdef"

    func query(_ pairs: [(String, String)], signWith form: SignatureMessage = .canonical, secret: String? = nil,
               padded: Bool = true) -> QueryParameters {
        let unsigned = QueryParameters(raw: pairs.map { "\($0)=\(percent($1))" }.joined(separator: "&"))
        var signature = RequestSignature.sign(RequestSignature.message(for: unsigned, form: form), secret: secret ?? self.secret)
        if !padded { signature = signature.replacingOccurrences(of: "=", with: "") }
        return QueryParameters(raw: unsigned.raw + "&signature=" + percent(signature))
    }

    func percent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? text
    }

    @Test func canonicalMessage() {
        let q = QueryParameters(raw: "timeout=1700000000&id=abc&user=j%20doe&signature=x&invitee=")
        #expect(RequestSignature.message(for: q, form: .canonical) == "id=abc&invitee=&timeout=1700000000&user=j doe")
        #expect(RequestSignature.message(for: q, form: .idOnly) == "abc")
        #expect(RequestSignature.message(for: q, form: .rawQuery) == "timeout=1700000000&id=abc&user=j%20doe&invitee=")
        #expect(QueryParameters(raw: "a=b+c%2Bd")["a"] == "b c+d")
    }

    @Test func pythonReferenceValue() {
        // base64.urlsafe_b64encode(hmac.new(b"s3cret", b"id=abc", hashlib.sha256).digest())
        #expect(RequestSignature.sign("id=abc", secret: "s3cret") == "44-KhFopCg_xdPGYl6Rk8yhTPwYE4CGuM_DMKHVuWQs=")
    }

    @Test("accepts each form, padded or not", arguments: SignatureMessage.allCases)
    func accepts(form: SignatureMessage) throws {
        let verifier = RequestSignature(secrets: [secret], message: form, requiredParameters: [])
        try verifier.verify(query([("id", "abc"), ("user", "jo")], signWith: form))
        try verifier.verify(query([("id", "abc")], signWith: form, padded: false))
    }

    @Test func rotationAcceptsAnyConfiguredSecret() throws {
        let verifier = RequestSignature(secrets: ["new-secret", secret], message: .canonical, requiredParameters: [])
        try verifier.verify(query([("id", "abc")]))
        try verifier.verify(query([("id", "abc")], secret: "new-secret"))
    }

    @Test("refusals say which check failed", arguments: [
        ("missing", "missing signature"), ("garbled", "malformed signature"), ("wrong", "bad signature"),
        ("other-id", "bad signature"), ("expired", "URL expired"), ("no-user", "missing signed parameter 'user'"),
        ("bad-timeout", "malformed timeout"), ("other-secret", "bad signature"),
    ])
    func refusals(kind: String, message: String) {
        let verifier = RequestSignature(secrets: [secret], message: .canonical, requiredParameters: kind == "no-user" ? ["user"] : [])
        let future = String(Int(Date().timeIntervalSince1970) + 600)
        let q: QueryParameters
        switch kind {
        case "missing": q = QueryParameters(raw: "id=abc")
        case "garbled": q = QueryParameters(raw: "id=abc&signature=%21%21%21")
        case "wrong": q = QueryParameters(raw: "id=abc&signature=" + RequestSignature.sign("id=abd", secret: secret))
        case "other-id":
            // A valid signature for one id, replayed for another.
            let valid = query([("id", "abc"), ("timeout", future)])
            q = QueryParameters(raw: valid.raw.replacingOccurrences(of: "id=abc", with: "id=abd"))
        case "expired": q = query([("id", "abc"), ("timeout", "1000")])
        case "bad-timeout": q = query([("id", "abc"), ("timeout", "soon")])
        case "other-secret": q = query([("id", "abc")], secret: "another")
        default: q = query([("id", "abc")])
        }
        do {
            try verifier.verify(q)
            Issue.record("\(kind) was accepted")
        } catch {
            #expect(error.status == .forbidden)
            #expect(error.message == message)
            #expect(!error.message.contains(RequestSignature.sign("id=abc", secret: secret)))
        }
    }
}

@Suite("Component ids, ranges, Content-Disposition")
struct ParsingTests {
    @Test func ids() {
        #expect(ComponentID("3f2504e0-4f89-11d3-9a0c-0305e82c3301") != nil)
        #expect(ComponentID("a.b_c-d") != nil)
        for bad in ["", "a/b", "..", "a..b", ".hidden", "a\0b", "a b", String(repeating: "a", count: 129), "ü", "%2e%2e"] {
            #expect(ComponentID(bad) == nil, "\(bad)")
        }
    }

    @Test("ranges", arguments: [
        ("bytes=0-9", ByteRange.partial(0..<10)), ("bytes=90-", .partial(90..<100)), ("bytes=-5", .partial(95..<100)),
        ("bytes=95-200", .partial(95..<100)), ("bytes=100-", .unsatisfiable), ("bytes=150-160", .unsatisfiable),
        ("bytes=-0", .unsatisfiable), ("bytes=0-1,5-6", .whole), ("bytes=a-b", .whole), ("items=0-1", .whole),
        ("bytes=9-1", .whole), ("bytes=", .whole), ("bytes=--1", .whole),
        // Found by fuzzing: a last byte of Int64.max overflowed when one was added.
        ("bytes=0-9223372036854775807", .partial(0..<100)), ("bytes=-9223372036854775807", .partial(0..<100)),
        ("bytes=0-99999999999999999999", .whole),
    ])
    func ranges(header: String, expected: ByteRange) {
        #expect(ByteRange.parse(header, size: 100) == expected)
    }

    @Test func contentDisposition() {
        #expect(ContentDisposition.fileName(from: "attachment; filename=\"shot 010.exr\"") == "shot 010.exr")
        #expect(ContentDisposition.fileName(from: "attachment; filename=plain.jpg") == "plain.jpg")
        #expect(ContentDisposition.fileName(from: "attachment; filename*=UTF-8''%C3%BC.png") == "ü.png")
        #expect(ContentDisposition.fileName(from: "attachment; filename=\"../../etc/passwd\"") == "passwd")
        #expect(ContentDisposition.header(fileName: "a.jpg", contentType: "image/jpeg") == "inline; filename=\"a.jpg\"")
        #expect(ContentDisposition.header(fileName: "a.zip", contentType: "application/zip") == "attachment; filename=\"a.zip\"")
        #expect(ContentDisposition.header(fileName: "ü.mov", contentType: "video/quicktime")
            == "inline; filename=\"_.mov\"; filename*=UTF-8''%C3%BC.mov")
    }
}

@Suite("HTTP dates from clients")
struct HTTPDateTests {
    @Test func roundTrip() throws {
        let date = try #require(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT"))
        #expect(HTTPDate.string(date) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    // Found by fuzzing: fields too large for C's Int32 trapped (a remote crash through If-Modified-Since).
    @Test("Out-of-range fields are not dates", arguments: [
        "Sun, 06 Nov 1994 08:49:39999999999999999997 GMT", "Sun, 06 Nov 4294967296 08:49:37 GMT",
        "Sun, 99999999999 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov -5 08:49:37 GMT",
    ])
    func outOfRange(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }
}

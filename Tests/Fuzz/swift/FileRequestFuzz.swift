// libFuzzer target `file_request`: the file server's request parsers, compiled into one small module with
// Sources/FileServer/{QueryParameters,ByteRange,ContentDisposition,ComponentID,RequestSignature,
// FileServerError}.swift, SignatureMessage (cut out of FileServerConfiguration.swift by run.sh) and
// Sources/ServiceSupport/HTTPDate.swift (the If-Modified-Since parser of /get).
// The first input byte selects the parser; the rest is the text it parses. Oracles (fatalError) check
// what the callers rely on: ranges inside the body, header-safe Content-Disposition, path-safe ids,
// and that a correctly signed query verifies while a tampered one does not.
import Foundation

private let secret = "pinhole-fuzz-secret"
private let now = Date(timeIntervalSince1970: 1_700_000_000)
private let verifiers = SignatureMessage.allCases.map {
    ($0, RequestSignature(secrets: ["rotated-out-secret", secret], message: $0, requiredParameters: ["id"]))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFileRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 6 {
    case 0: fuzzQuery(text)
    case 1: fuzzRange(text)
    case 2: fuzzDisposition(text, image: size % 2 == 0)
    case 3: fuzzComponentID(text)
    case 4: fuzzSignature(text)
    default: fuzzHTTPDate(text)
    }
    return 0
}

/// 0: the query string (form decoding) and the three signed-message forms.
private func fuzzQuery(_ raw: String) {
    let query = QueryParameters(raw: raw)
    _ = (query["id"], query["signature"], query["timeout"])
    for form in SignatureMessage.allCases { _ = RequestSignature.message(for: query, form: form) }
    // Oracle: a value sent fully percent-encoded decodes back to itself.
    let encoded = raw.utf8.map { byte in "%" + String(byte, radix: 16, uppercase: true).leftPadded() }.joined()
    if QueryParameters(raw: "x=1&v=" + encoded)["v"] != raw { fatalError("oracle: form decoding of \(raw.debugDescription)") }
}

/// 1: the Range header against bodies of several sizes.
private func fuzzRange(_ header: String) {
    for size: Int64 in [0, 1, 100, 1 << 40, Int64.max - 1, Int64.max] {
        switch ByteRange.parse(header, size: size) {
        case let .partial(range):
            // The caller sends range.lowerBound..<range.upperBound of the body and `upperBound - 1` in Content-Range.
            if range.isEmpty || range.lowerBound < 0 || range.upperBound > size {
                fatalError("oracle: ByteRange.parse(\(header.debugDescription), size: \(size)) == \(range)")
            }
        case .whole, .unsatisfiable:
            break
        }
    }
}

/// 2: an upload's Content-Disposition, and the header a download answers with (a stored name is replayed).
private func fuzzDisposition(_ header: String, image: Bool) {
    let contentType = image ? "image/png" : "application/octet-stream"
    for name in [ContentDisposition.fileName(from: header), header] {
        let answer = ContentDisposition.header(fileName: name, contentType: contentType)
        if !answer.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            fatalError("oracle: Content-Disposition \(answer.debugDescription) is not header-safe (name \(String(describing: name)))")
        }
        if !(answer.hasPrefix("inline") || answer.hasPrefix("attachment")) { fatalError("oracle: disposition \(answer.debugDescription)") }
    }
}

/// 3: component ids become storage paths: accepted exactly when alphanumeric, `-`, `_`, `.` (not first), no `..`, ≤ 128 bytes.
private func fuzzComponentID(_ text: String) {
    let accepted = ComponentID(text) != nil
    let bytes = Array(text.utf8)
    func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
    let expected = !bytes.isEmpty && bytes.count <= 128 && alnum(bytes[0])
        && bytes.allSatisfy { alnum($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
        && !zip(bytes, bytes.dropFirst()).contains { $0 == 0x2E && $1 == 0x2E }
    if accepted != expected { fatalError("oracle: ComponentID(\(text.debugDescription)) accepted: \(accepted), expected \(expected)") }
}

/// 4: signature verification of a query; oracle: signing the query's message and appending the signature
/// verifies, in every message form; a tampered signature does not.
private func fuzzSignature(_ raw: String) {
    _ = RequestSignature.decodeURLSafeBase64(raw)
    let query = QueryParameters(raw: raw)
    for (form, verifier) in verifiers {
        do { try verifier.verify(query, now: now) } catch {}
        let message = RequestSignature.message(for: query, form: form)
        let signature = RequestSignature.sign(message, secret: secret)
        let signed = QueryParameters(raw: raw + "&signature=" + signature)
        if RequestSignature.message(for: signed, form: form) != message {
            fatalError("oracle: appending a signature changed the \(form) message of \(raw.debugDescription)")
        }
        do {
            try verifier.verify(signed, now: now)
        } catch {
            if ["missing signature", "malformed signature", "bad signature"].contains(error.message) {
                fatalError("oracle: a correctly signed \(form) query fails with '\(error.message)': \(signed.raw.debugDescription)")
            }
        }
        var tampered = Array(signature.utf8)
        tampered[0] = tampered[0] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let forged = QueryParameters(raw: raw + "&signature=" + String(decoding: tampered, as: UTF8.self))
        if (try? verifier.verify(forged, now: now)) != nil {
            fatalError("oracle: a tampered \(form) signature verifies: \(forged.raw.debugDescription)")
        }
    }
}

/// 5: If-Modified-Since; oracle: a parsed date formats and parses back to itself.
private func fuzzHTTPDate(_ text: String) {
    guard let date = HTTPDate.parse(text) else { return }
    guard date.timeIntervalSince1970 < 253_402_300_800 else { return }   // years after 9999 are not formatted
    let formatted = HTTPDate.string(date)
    if HTTPDate.parse(formatted) != date {
        fatalError("oracle: HTTPDate \(text.debugDescription) → \(date.timeIntervalSince1970) → \(formatted.debugDescription) does not round-trip")
    }
}

extension String {
    fileprivate func leftPadded() -> String { count < 2 ? "0" + self : self }
}

// libFuzzer target `thumbor_url`: Thumbor's URL grammar (ThumborPath / ThumborRequest), the filter
// grammar (FilterCall / ThumborFilter), percent-encoding and the signature check (URLSigner /
// SignatureVerifier against a fixed key). Compiled into one module with Sources/ThumborURL/*.swift,
// so internal API is visible and coverage guides the fuzzer through the parsers.
// Besides crashes, a few oracles stop the run (fatalError) when a property that must hold fails.
import Foundation

private let fuzzKey = "pinhole-fuzz-key"
private let signer = URLSigner(key: fuzzKey)
private let verifier = SignatureVerifier(keys: [fuzzKey])
private let someFilters: Set<String> = ["quality", "blur", "focal", "watermark", "curve", "still"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzThumborURL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    // Request targets reach the router as Swift strings; invalid UTF-8 arrives repaired.
    let text = String(decoding: bytes, as: UTF8.self)
    fuzzPath(text)
    fuzzFilters(text)
    fuzzSignature(text)
    fuzzPercentEncoding(text, Array(bytes))
    return 0
}

/// The path grammar and everything the service derives from a parsed request.
private func fuzzPath(_ text: String) {
    guard let request = try? ThumborPath.parse(text) else { return }
    _ = request.trimOption?.corner
    _ = request.imageURL
    _ = request.crop.isSet
    _ = (request.width.isSet, request.height.isSet, request.width.description, request.height.description)
    for call in request.filterCalls {
        _ = ThumborFilter.thumborParams(call)
        _ = ThumborFilter.parse(call)
    }
    for filter in ThumborFilter.parseList(request.filters ?? "", enabled: someFilters) { _ = (filter.phase, filter.name) }
    _ = ExtractFocal.resolve(image: request.image)
    _ = verifier.isValid(rawPath: text, request: request)
    if let hash = request.hash { _ = ThumborPath.signedPortion(ofRawPath: text, hash: hash) }
}

/// The filter grammar on its own (a URL only reaches it through `filters:(.+?\))/`).
private func fuzzFilters(_ text: String) {
    for call in FilterCall.parseList(text) {
        _ = ThumborFilter.thumborParams(call)
        if let filter = ThumborFilter.parse(call) { _ = (filter.phase, filter.name) }
    }
}

/// Oracle: a path signed with the key verifies, and the same path with a tampered signature does not.
private func fuzzSignature(_ text: String) {
    // The signed portion as a client would sign it: the path without its leading `/`.
    var scalars = text.unicodeScalars[...]
    if scalars.first == "/" { scalars = scalars.dropFirst() }
    let portion = String(Substring(scalars))
    guard !portion.isEmpty else { return }
    let signature = signer.signature(for: portion)
    let signedPath = "/" + signature + "/" + portion
    guard let request = try? ThumborPath.parse(signedPath) else { return }   // e.g. a `%FF` in the path: 400
    if request.hash != signature {
        fatalError("oracle: the signature segment of \(signedPath.debugDescription) parsed as \(String(describing: request.hash))")
    }
    if !verifier.isValid(rawPath: signedPath, request: request) {
        fatalError("oracle: a correctly signed path does not verify: \(signedPath.debugDescription)")
    }
    var tampered = Array(signature.utf8)
    tampered[0] = tampered[0] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
    if verifier.isValid(hash: String(decoding: tampered, as: UTF8.self), signedString: portion) {
        fatalError("oracle: a tampered signature verifies for \(portion.debugDescription)")
    }
}

/// Oracles: percent-encoding round-trips; URL-safe base64 has the padded length.
private func fuzzPercentEncoding(_ text: String, _ bytes: [UInt8]) {
    if PercentEncoding.decode(PercentEncoding.quote(text)) != text {
        fatalError("oracle: decode(quote(s)) != s for \(text.debugDescription)")
    }
    if PercentEncoding.decodeToBytes(PercentEncoding.quote(bytes: bytes, safe: "/:")) != bytes {
        fatalError("oracle: decodeToBytes(quote(bytes)) != bytes")
    }
    _ = PercentEncoding.decode(text)
    let encoded = URLSafeBase64.encode(bytes, padded: true)
    if encoded.utf8.count != (bytes.count + 2) / 3 * 4 { fatalError("oracle: base64 length") }
}

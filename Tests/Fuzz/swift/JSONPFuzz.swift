// libFuzzer target `jsonp`: the /meta JSONP callback check (Sources/ThumbnailService/JSONPCallback.swift),
// compiled into one module with it. Oracle: a name is accepted exactly when it is a dot-separated path of
// ASCII JavaScript identifiers of at most 128 bytes (checked here on bytes, independently), so an accepted
// callback can never carry markup, quotes, parentheses or line breaks into the `text/javascript` answer.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    // `?callback=` arrives percent-decoded as a Swift string (invalid UTF-8 repaired).
    let name = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let accepted = JSONPCallback.isValid(name)
    let expected = referenceIsValid(Array(name.utf8))
    if accepted != expected {
        fatalError("oracle: JSONPCallback.isValid(\(name.debugDescription)) == \(accepted), expected \(expected)")
    }
    if accepted {
        let wrapped = JSONPCallback.wrap("{\"thumbor\":{}}", in: name)
        guard wrapped.hasPrefix(name + "("), wrapped.hasSuffix(");") else { fatalError("oracle: wrap(\(name.debugDescription))") }
    }
    return 0
}

private func referenceIsValid(_ bytes: [UInt8]) -> Bool {
    guard !bytes.isEmpty, bytes.count <= 128 else { return false }
    func isStart(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || b == 0x24   // a-z A-Z _ $
    }
    var atStart = true
    for byte in bytes {
        if byte == 0x2E {   // .
            if atStart { return false }
            atStart = true
        } else if atStart {
            guard isStart(byte) else { return false }
            atStart = false
        } else {
            guard isStart(byte) || (byte >= 0x30 && byte <= 0x39) else { return false }
        }
    }
    return !atStart
}

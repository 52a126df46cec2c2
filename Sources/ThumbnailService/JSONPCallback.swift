/// JSONP for `/meta` (spec §5.6): `name(<json>);` as `text/javascript`. Thumbor 7.8.0 writes the
/// Python bytes repr (`b'cb'(…)`) for `?callback=`; Pinhole writes the name itself, and only names that
/// are JavaScript identifier paths (`cb`, `jQuery123_456`, `app.meta.cb`), so a callback cannot inject
/// script into the response (anything else: 400).
enum JSONPCallback {
    static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            guard let first = part.unicodeScalars.first, isIdentifierStart(first) else { return false }
            return part.unicodeScalars.allSatisfy { isIdentifierStart($0) || ("0"..."9").contains($0) }
        }
    }

    private static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" || c == "$"
    }

    static func wrap(_ json: String, in name: String) -> String { name + "(" + json + ");" }
}

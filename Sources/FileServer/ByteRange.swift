/// A single-range `Range` request (RFC 9110 §14). Multi-range and malformed headers are ignored
/// (the whole body is sent, as the RFC allows); a range starting past the end is unsatisfiable.
enum ByteRange: Equatable {
    case whole
    case partial(Range<Int64>)
    case unsatisfiable

    static func parse(_ header: String?, size: Int64) -> ByteRange {
        guard let header else { return .whole }
        let text = header.trimmingCharacters()
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst("bytes=".count)
        if spec.contains(",") { return .whole }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        guard parts.count == 2 else { return .whole }
        let digits: (String) -> Int64? = { $0.isEmpty || !$0.allSatisfy(\.isASCIIDigit) ? nil : Int64($0) }
        switch (digits(parts[0]), digits(parts[1])) {
        case let (first?, last?):
            guard first <= last else { return .whole }
            guard first < size else { return .unsatisfiable }
            // `last` may be Int64.max ("to the end"): clamp before adding one.
            return .partial(first..<(min(last, size - 1) + 1))
        case let (first?, nil) where parts[1].isEmpty:
            guard first < size else { return .unsatisfiable }
            return .partial(first..<size)
        case let (nil, suffix?) where parts[0].isEmpty:
            guard suffix > 0 else { return .unsatisfiable }
            guard size > 0 else { return .unsatisfiable }
            return .partial(max(0, size - suffix)..<size)
        default:
            return .whole
        }
    }
}

extension String {
    func trimmingCharacters() -> String { Substring(self).trimmingSpaces() }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

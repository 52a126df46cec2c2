/// One `name(args)` call from a Thumbor filters string.
public struct FilterCall: Sendable, Equatable, Hashable {
    public var name: String
    /// The text between the first `(` and the final `)`, undecoded further.
    public var arguments: String
    /// The call as written, e.g. `quality(80)`.
    public var text: String

    /// Splits a filters string as Thumbor's `FiltersFactory` does: on `):`, re-appending `)` to every
    /// piece but the last; the name is the text before the first `(`. Pieces without `(…)` are kept
    /// with empty arguments so that callers can skip them as Thumbor does.
    public static func parseList(_ filters: String) -> [FilterCall] {
        let pieces = filters.split(separator: "):", omittingEmptySubsequences: false)
        return pieces.enumerated().map { index, piece in
            let text = index < pieces.count - 1 ? String(piece) + ")" : String(piece)
            guard let open = text.firstIndex(of: "(") else {
                return FilterCall(name: text, arguments: "", text: text)
            }
            let name = String(text[..<open])
            var rest = text[text.index(after: open)...]
            if rest.hasSuffix(")") { rest = rest.dropLast() }
            return FilterCall(name: name, arguments: String(rest), text: text)
        }
    }
}

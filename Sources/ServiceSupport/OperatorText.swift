import Foundation

/// Text for operators (log fields, command output): what an error says, never how Swift spells its type.
/// `String(describing:)` of an enum nested in another value prints type paths
/// (`undecodable(Vips.VipsError(...))`, `HTTPClientError.connectTimeout`), which mean nothing to someone
/// reading a log; every `"\(error)"` meant for a person goes through `describe` instead.
public enum OperatorText {
    /// The error's own words when it has them (`CustomStringConvertible`, `LocalizedError`, Foundation's
    /// errors), with any Swift type path left in them turned into plain words.
    public static func describe(_ error: any Error) -> String {
        if let localized = error as? any LocalizedError, let text = localized.errorDescription {
            return plain(text)
        }
        if let cocoa = error as? CocoaError {
            return plain(cocoa.localizedDescription)
        }
        if type(of: error) is NSError.Type, let ns = error as? NSError {
            return plain(ns.localizedDescription)
        }
        return plain(String(describing: error))
    }

    /// `Module.Type.someCase` and `SomeError.someCase` → `some case`; `Module.Type(` → `Type(`. Narrow on
    /// purpose, so that file names in messages (`A.exr`, `Render.v001.exr`) are left alone.
    public static func plain(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var out = text
        out = out.replacing(casePath) { match in words(String(match.output.1)) }
        out = out.replacing(errorCasePath) { match in words(String(match.output.1)) }
        out = out.replacing(typePath) { match in String(match.output.1) + "(" }
        return out
    }

    /// Splits a camel-case identifier into lower-case words: `connectTimeout` → `connect timeout`.
    public static func words(_ identifier: String) -> String {
        var out = ""
        var previousWasLower = false
        for character in identifier {
            if character == "_" {
                out += " "
                previousWasLower = false
                continue
            }
            if character.isUppercase, previousWasLower { out += " " }
            out += character.lowercased()
            previousWasLower = character.isLowercase || character.isNumber
        }
        return out
    }

    /// Two or more capitalised components, then a lower-case one: `Module.Type.case`.
    nonisolated(unsafe) private static let casePath: Regex<(Substring, Substring)> = #/\b(?:[A-Z][A-Za-z0-9_]*\.){2,}([a-z_][A-Za-z0-9_]*)\b/#.wordBoundaryKind(.simple)
    /// An error type and its case: `HTTPClientError.connectTimeout`.
    nonisolated(unsafe) private static let errorCasePath: Regex<(Substring, Substring)> = #/\b[A-Z][A-Za-z0-9_]*Error\.([a-z_][A-Za-z0-9_]*)\b/#.wordBoundaryKind(.simple)
    /// A qualified type printed with its fields: `Vips.VipsError(`.
    nonisolated(unsafe) private static let typePath: Regex<(Substring, Substring)> = #/\b(?:[A-Z][A-Za-z0-9_]*\.)+([A-Z][A-Za-z0-9_]*)\(/#.wordBoundaryKind(.simple)
}

import Crypto
import Foundation

/// Verifies file-server URLs: HMAC-SHA256 with the service secret over the configured message form,
/// URL-safe base64 with or without padding, compared in constant time; then the extra signed
/// parameters (`timeout` is a UTC unix time after which the URL is refused).
public struct RequestSignature: Sendable {
    let keys: [SymmetricKey]
    let message: SignatureMessage
    let requiredParameters: [String]

    public init(secrets: [String], message: SignatureMessage, requiredParameters: [String]) {
        keys = secrets.map { SymmetricKey(data: Array($0.utf8)) }
        self.message = message
        self.requiredParameters = requiredParameters
    }

    /// The signed message for a query, in the configured form.
    public static func message(for query: QueryParameters, form: SignatureMessage) -> String {
        switch form {
        case .canonical:
            return query.pairs.filter { $0.name != "signature" }
                .sorted { $0.name < $1.name }
                .map { "\($0.name)=\($0.value)" }
                .joined(separator: "&")
        case .idOnly:
            return query["id"] ?? ""
        case .rawQuery:
            return query.raw.split(separator: "&", omittingEmptySubsequences: true)
                .filter { !($0 == "signature" || $0.hasPrefix("signature=")) }
                .joined(separator: "&")
        }
    }

    /// URL-safe base64 of HMAC-SHA256(secret, message), with padding.
    public static func sign(_ message: String, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    /// Throws a 403 naming the check that failed — never the expected signature.
    public func verify(_ query: QueryParameters, now: Date = Date()) throws(FileServerError) {
        guard let presented = query["signature"], !presented.isEmpty else {
            throw FileServerError(.forbidden, "missing signature")
        }
        guard let presentedMAC = Self.decodeURLSafeBase64(presented) else {
            throw FileServerError(.forbidden, "malformed signature")
        }
        let signed = Array(Self.message(for: query, form: message).utf8)
        var valid = false
        for key in keys {
            // HMAC.isValidAuthenticationCode compares in constant time; every key is tried.
            valid = HMAC<SHA256>.isValidAuthenticationCode(presentedMAC, authenticating: signed, using: key) || valid
        }
        guard valid else { throw FileServerError(.forbidden, "bad signature") }
        for name in requiredParameters where query[name] == nil {
            throw FileServerError(.forbidden, "missing signed parameter '\(name)'")
        }
        if let timeout = query["timeout"], !timeout.isEmpty {
            guard let expiry = Double(timeout) else { throw FileServerError(.forbidden, "malformed timeout") }
            if now.timeIntervalSince1970 > expiry { throw FileServerError(.forbidden, "URL expired") }
        }
    }

    static func decodeURLSafeBase64(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard = standard.replacingOccurrences(of: "=", with: "")
        guard !standard.isEmpty, standard.count % 4 != 1 else { return nil }
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }
}

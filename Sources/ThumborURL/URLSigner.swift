import Crypto

/// Thumbor's URL signature: URL-safe base64 (with `=` padding) of HMAC-SHA1(key, signed string).
public struct URLSigner: Sendable {
    private let key: SymmetricKey

    public init(key: String) {
        self.key = SymmetricKey(data: Array(key.utf8))
    }

    /// The 28-character signature of `signedString` (the path after the signature segment).
    public func signature(for signedString: String) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(signedString.utf8), using: key)
        return URLSafeBase64.encode(Array(mac), padded: true)
    }
}

/// Checks signatures against every configured key (key rotation: any key passes; the first one signs).
public struct SignatureVerifier: Sendable {
    public let signers: [URLSigner]

    public init(keys: [String]) {
        signers = keys.map(URLSigner.init(key:))
    }

    /// Thumbor compares `unquote(hash)` (the hash is decoded once more) with the computed signature.
    /// The comparison here is constant-time so a client cannot learn a signature byte by byte.
    public func isValid(hash: String, signedString: String) -> Bool {
        guard let presented = PercentEncoding.decode(hash) else { return false }
        let presentedBytes = Array(presented.utf8)
        var valid = false
        for signer in signers {
            let expected = Array(signer.signature(for: signedString).utf8)
            // Evaluate every key so the time taken does not reveal which one matched.
            valid = ConstantTime.equal(presentedBytes, expected) || valid
        }
        return valid
    }

    /// Verifies a raw request path as Thumbor does: the signature covers everything after `/<hash>/`.
    public func isValid(rawPath: String, request: ThumborRequest) -> Bool {
        guard let hash = request.hash else { return false }
        return isValid(hash: hash, signedString: ThumborPath.signedPortion(ofRawPath: rawPath, hash: hash))
    }
}

enum ConstantTime {
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

public enum URLSafeBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8], padded: Bool) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        let remaining = bytes.count - index
        if remaining == 1 {
            let n = UInt32(bytes[index]) << 16
            output += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
            if padded { output += Array("==".utf8) }
        } else if remaining == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
            if padded { output += Array("=".utf8) }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

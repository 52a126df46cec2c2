import ThumborURL

/// The group a cached item belongs to: the ftrack component id when the source URL carries one
/// (`…/component/get?id=<id>…` or the file server's `/get?id=<id>…`), else the source URL itself.
/// Removing a component purges its group.
public enum ComponentKey {
    public static func of(imageURL: String) -> String {
        let decoded = PercentEncoding.decode(imageURL) ?? imageURL
        guard let query = decoded.split(separator: "?", maxSplits: 1).dropFirst().first else { return decoded }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "id", !parts[1].isEmpty {
                return PercentEncoding.decode(parts[1]) ?? String(parts[1])
            }
        }
        return decoded
    }
}

/// `extract_focal()` (spec §6): when the image part is itself a signed or unsafe Thumbor URL with a
/// manual crop (`http://host/unsafe/100x150:300x200/img.jpg`), render its inner image instead and make
/// that crop a focal point. Looks through up to ten nested URLs, as Thumbor does. Works on the decoded
/// image part: Thumbor 7.8.0 parses the re-quoted one, where the crop's `:` has become `%3A`, so its
/// extract_focal never finds a crop (README: differences).
public enum ExtractFocal {
    public static let maxLevels = 10

    /// `image` is the decoded image part; the result's `image` is the innermost one, decoded.
    public static func resolve(image: String) -> (image: String, crop: CropBox)? {
        var url = image
        for _ in 0..<maxLevels {
            url = stripDomain(url)
            guard let inner = try? ThumborPath.parse("/" + url), !inner.image.isEmpty, inner.hash != nil || inner.unsafe else {
                return nil
            }
            if inner.crop.isSet { return (inner.image, inner.crop) }
            url = inner.image
        }
        return nil
    }

    /// `^(https?://)?.*?/` removed: the scheme and host (everything up to the first `/` after them).
    static func stripDomain(_ url: String) -> String {
        var rest = Substring(url)
        for scheme in ["http://", "https://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        guard let slash = rest.firstIndex(of: "/") else { return url }
        return String(rest[rest.index(after: slash)...])
    }
}

/// Colours as Pillow's `ImageColor.getrgb` reads them in `fill()` and `background_color()`: a CSS
/// colour name, or hex digits (Thumbor retries with `#` prepended). `transparent` is handled by callers.
public enum ColourName {
    public static func rgb(_ text: String) -> (red: Int, green: Int, blue: Int)? {
        let lower = text.lowercased()
        if let named = names[lower] { return hex(named) }
        return hex(lower)
    }

    /// `#rgb`, `#rrggbb` (and the 4/8-digit forms, alpha ignored) without the `#`.
    static func hex(_ digits: String) -> (red: Int, green: Int, blue: Int)? {
        guard digits.allSatisfy(\.isHexDigit) else { return nil }
        let values = digits.compactMap { $0.hexDigitValue }
        switch values.count {
        case 3, 4: return (values[0] * 17, values[1] * 17, values[2] * 17)
        case 6, 8: return (values[0] * 16 + values[1], values[2] * 16 + values[3], values[4] * 16 + values[5])
        default: return nil
        }
    }

    /// The CSS colour names Pillow knows (a subset that covers the common ones; others fall back to hex).
    static let names: [String: String] = [
        "black": "000000", "white": "ffffff", "red": "ff0000", "lime": "00ff00", "green": "008000", "blue": "0000ff",
        "yellow": "ffff00", "cyan": "00ffff", "aqua": "00ffff", "magenta": "ff00ff", "fuchsia": "ff00ff",
        "silver": "c0c0c0", "gray": "808080", "grey": "808080", "maroon": "800000", "olive": "808000",
        "purple": "800080", "teal": "008080", "navy": "000080", "orange": "ffa500", "pink": "ffc0cb",
        "brown": "a52a2a", "gold": "ffd700", "beige": "f5f5dc", "ivory": "fffff0", "khaki": "f0e68c",
        "lavender": "e6e6fa", "salmon": "fa8072", "tan": "d2b48c", "violet": "ee82ee", "indigo": "4b0082",
        "coral": "ff7f50", "crimson": "dc143c", "chocolate": "d2691e", "darkgray": "a9a9a9", "darkgrey": "a9a9a9",
        "lightgray": "d3d3d3", "lightgrey": "d3d3d3", "dimgray": "696969", "dimgrey": "696969",
        "whitesmoke": "f5f5f5", "gainsboro": "dcdcdc", "snow": "fffafa", "skyblue": "87ceeb",
        "steelblue": "4682b4", "royalblue": "4169e1", "darkblue": "00008b", "darkred": "8b0000",
        "darkgreen": "006400", "forestgreen": "228b22", "seagreen": "2e8b57", "turquoise": "40e0d0",
        "tomato": "ff6347", "orangered": "ff4500", "plum": "dda0dd", "orchid": "da70d6", "wheat": "f5deb3",
    ]
}

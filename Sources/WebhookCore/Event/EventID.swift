/// Which provider-given ids are used as event ids (SPEC section 8).
public enum EventID {
    /// The longest id used as given, in bytes.
    public static let maximumBytes = 256

    /// `id` when it can be an event id: not empty, not only whitespace, at most 256 bytes, no
    /// control characters, no U+FFFD. Otherwise nil, and the event's id is the body hash: an
    /// empty id taken as given would make every later event with an empty id a "duplicate" of
    /// the first, stored nowhere.
    ///
    /// U+FFFD is what a byte that is not UTF-8 becomes when a header or JSON string is
    /// decoded: `delivery-\xff` and `delivery-\xfe` both arrive as `delivery-\u{FFFD}`, so
    /// the id no longer tells the two events apart and the second would be answered
    /// `duplicate` and never stored.
    public static func usable(_ id: String?) -> String? {
        guard let id, !id.isEmpty, id.utf8.count <= maximumBytes else { return nil }
        var onlyWhitespace = true
        for scalar in id.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0xFFFD { return nil }
            // ASCII's whitespace other than the space is control characters, refused above;
            // the Unicode property lookup is for the rest.
            if scalar.value < 0x80 ? scalar.value != 0x20 : !scalar.properties.isWhitespace { onlyWhitespace = false }
        }
        return onlyWhitespace ? nil : id
    }
}

extension StringProtocol {
    /// Whether the text holds a control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F),
    /// which names and identifiers from clients must not carry (a NUL cannot even be stored in PostgreSQL).
    public var containsControlCharacters: Bool {
        unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}

/// Device identifiers arrive from hostile clients: accept only what Apple devices send
/// (UDIDs like `00008030-001A2B3C4D5E6F70`, serial numbers), bounded in length.
public enum DeviceIdentifier {
    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45
            }
    }
}

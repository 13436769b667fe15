/// Device and enrollment identifiers arrive from hostile clients: accept only what Apple devices send
/// (UDIDs like `00008030-001A2B3C4D5E6F70` or 40 hex digits, serial numbers, a User Enrollment's
/// `EnrollmentID`), never empty and bounded in length. The one rule every service applies.
public enum DeviceIdentifier {
    public static let maxLength = 64

    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxLength
            && text.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45
            }
    }
}

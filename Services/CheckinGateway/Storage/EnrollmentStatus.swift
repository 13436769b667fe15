/// Where an enrollment stands. Stored as text in `enrollments.status`; every read and write of that
/// column goes through this type.
enum EnrollmentStatus: String, Sendable, Codable, CaseIterable {
    /// Authenticated with an identity; no TokenUpdate since.
    case pending
    /// Took its first TokenUpdate: reachable by push, takes commands.
    case enrolled
    /// Sent CheckOut (its MDM profile was removed).
    case checkedOut = "checked-out"
    /// Acknowledged the removal of its MDM profile.
    case unenrolled

    init(stored: String?) { self = stored.flatMap(Self.init(rawValue:)) ?? .pending }

    /// May take commands and ask for the next one.
    var isActive: Bool { self == .pending || self == .enrolled }
}

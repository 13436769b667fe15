import OrchardStorage

/// This service's schema. The messaging outbox and inbox tables are added by the service kit.
enum ProfileSignerMigrations {
    static let all: [Migration] = []
}

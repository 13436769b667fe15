import Foundation
import Logging
import OrchardStorage
import ServiceLifecycle

/// Keeps the directory's word about users with live tokens, off the device path: every `interval` one replica (the one
/// that claims the sweep in PostgreSQL) asks each domain's directory for its disabled entries (`disabledFilter`) and
/// revokes the tokens whose directory entry is among them; every tenth sweep it also lists the domain's users
/// (`userFilter` with `*`) and revokes tokens whose entry is gone. A directory that does not answer is skipped (logged):
/// tokens keep the last answer rather than every device of the organisation being challenged at once.
/// So a user disabled in the directory stops working within `interval` plus the gateway's cache.
struct DirectorySweep: Service {
    let database: Database
    let domains: ManagedDomains
    let tokens: AccountTokens
    let service: String
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var round = 0
            while !Task.isCancelled {
                do {
                    if try await claim() {
                        try await sweep(listUsers: round % 10 == 0)
                        round += 1
                    }
                } catch {
                    logger.warning("directory sweep failed: \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Whether this replica sweeps now (one per interval, whichever asks first).
    private func claim() async throws -> Bool {
        let seconds = max(1, Int(interval.components.seconds) - 1)
        return try await AccountTokenStore.claimSweep(database, intervalSeconds: seconds)
    }

    func sweep(listUsers: Bool) async throws {
        for domain in try await domains.list() {
            guard let record = try await domains.find(domain.domain), let directory = try domains.directory(of: record) else { continue }
            let live = try await AccountTokenStore.liveAccounts(database, domain: record.view.domain)
            guard !live.isEmpty else { continue }
            var revoke: [String: String] = [:]
            if let disabledEntries = await directory.disabledEntries() {
                switch disabledEntries {
                case .success(let disabled):
                    for row in live where disabled.contains(row.dn) {
                        revoke[row.user] = "disabled in the directory"
                    }
                case .failure(let why):
                    logger.warning("directory of \(record.view.domain) did not answer the sweep; tokens stand", metadata: ["error": "\(why)"])
                    continue
                }
            }
            if listUsers {
                switch await directory.userEntries() {
                case .success(let present):
                    for row in live where !present.contains(row.dn) {
                        let user = row.user
                        revoke[user] = revoke[user] ?? "no longer in the directory"
                    }
                case .failure(let why):
                    logger.warning("directory of \(record.view.domain) did not list its users; tokens stand", metadata: ["error": "\(why)"])
                }
            }
            for (user, why) in revoke where !user.isEmpty {
                _ = try await tokens.revoke(user: user, actor: "service:\(service)", reason: why, correlationID: nil)
            }
        }
    }
}

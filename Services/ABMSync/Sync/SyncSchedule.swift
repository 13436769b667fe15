import Foundation
import Logging
import OrchardStorage
import ServiceLifecycle

/// Syncs every server token that is due (uploaded, terms accepted, not synced for `interval`), and runs a
/// full fetch, diffed against the mirror, once a day per token (devices the sync feed never showed appear).
/// Replicas all run it; a token's lease lets one of them at a time sync it.
struct SyncSchedule: Service {
    let sync: DeviceSync
    let database: Database
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await runDue() } catch { logger.warning("scheduled sync failed: \(error)") }
                // Every 10 s: a token whose replica died is taken over within the lease and 10 s.
                try? await Task.sleep(for: min(interval, .seconds(10)))
            }
        }
    }

    func runDue() async throws {
        let due = try await ABMTokenStore.dueForSync(database, intervalSeconds: Int(interval.components.seconds))
        for row in due {
            guard !Task.isCancelled else { continue }
            let id = row.id
            do {
                let reply = try await sync.sync(.init(id: id, actor: "service:abm-sync", fullFetch: row.fullFetch),
                                                correlationID: nil)
                logger.info("synced", metadata: ["token": "\(id)", "pages": "\(reply.pages)", "devices": "\(reply.devices)"])
            } catch {
                logger.warning("sync failed", metadata: ["token": "\(id)", "error": "\(error)"])
            }
        }
    }
}

import Logging
import ServiceLifecycle

/// Hourly, every server token's expiry: the days-left gauge, and a warning 30, 7 and 1 days before.
struct ExpiryWatch: Service {
    let tokens: ServerTokens
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await tokens.warnAll() } catch { logger.warning("expiry check failed: \(error)") }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
    }
}

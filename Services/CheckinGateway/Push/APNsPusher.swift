import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import OrchardCore
import OrchardCrypto
import OrchardObservability
import OrchardStorage
import ServiceLifecycle

/// Sends MDM pushes (`{"mdm":"<PushMagic>"}`) to APNs over HTTP/2 with the push certificate (mutual TLS).
/// Requests for the same device made while a push is pending are coalesced into one. 429 and 5xx are
/// retried with backoff; 410 and BadDeviceToken mark the device's token invalid.
actor APNsPusher: Service {
    private let database: Database
    private let certificates: PushCertificates
    private let baseURL: String
    private let trustRoots: [Certificate]
    private let logger: Logger
    private var pending: [String: Int] = [:]   // enrollment id → attempt
    /// Pushes being sent now, and pushes waiting out a retry's backoff: with `pending`, what is still to happen.
    private var inFlight = 0, retrying = 0
    private var wake: CheckedContinuation<Void, Never>?
    private var client: (HTTPClient, PushCertificate)?
    private var checkedAt = Date.distantPast

    init(database: Database, certificates: PushCertificates, baseURL: String, trustRoots: [Certificate], logger: Logger) {
        self.database = database
        self.certificates = certificates
        self.baseURL = baseURL
        self.trustRoots = trustRoots
        self.logger = logger
    }

    /// Asks for a push to each enrollment; returns at once.
    func push(_ enrollmentIDs: [String]) {
        for id in enrollmentIDs where pending[id] == nil { pending[id] = 0 }
        reportOutstanding()
        wakeUp()
    }

    /// `orchard_apns_outstanding_pushes`: 0 once every push asked for has been sent or given up.
    private func reportOutstanding() {
        OrchardMetrics.apnsOutstanding().set(Double(pending.count + inFlight + retrying))
    }

    /// The current push topic, when a certificate is installed; throws when it cannot be read (PostgreSQL away).
    func topic() async throws -> String? { try await currentClient()?.1.topic }

    /// Forgets the cached certificate (after an upload).
    func certificateChanged() async {
        try? await client?.0.shutdown()
        client = nil
        checkedAt = .distantPast
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.drain()
                await self.waitForWork()
            }
        }
        try? await client?.0.shutdown()
    }

    private func waitForWork() async {
        if !pending.isEmpty {
            try? await Task.sleep(for: .milliseconds(200))
            return
        }
        // Shutdown cancels this task: the wait must end then too, or the service never stops.
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled { continuation.resume() } else { wake = continuation }
            }
        } onCancel: {
            Task { await self.wakeUp() }
        }
    }

    private func wakeUp() {
        wake?.resume()
        wake = nil
    }

    private func drain() async {
        let batch = pending
        pending.removeAll()
        guard !batch.isEmpty else { return }
        inFlight = batch.count
        defer { inFlight = 0; reportOutstanding() }
        guard let (client, cert) = try? await currentClient() else {
            logger.debug("no push certificate: \(batch.count) pushes skipped")
            return
        }
        let targets: [Row]
        do {
            let ids = Array(batch.keys)
            targets = try await database.withConnection { c in try EnrollmentStore.pushTargets(c, ids: ids) }
        } catch {
            logger.warning("loading push targets failed: \(error)")
            for (id, attempt) in batch { pending[id] = attempt }
            return
        }
        await withTaskGroup(of: (String, PushOutcome).self) { group in
            for row in targets {
                guard let id = row.string("id"), let token = row.bytes("push_token"), let magic = row.string("push_magic") else { continue }
                group.addTask { (id, await Self.send(client: client, baseURL: self.baseURL, topic: cert.topic, token: token, magic: magic)) }
            }
            for await (id, outcome) in group {
                await handle(outcome, id: id, attempt: batch[id] ?? 0)
            }
        }
    }

    /// Six sends at most, 200 ms, 400 ms, 800 ms… apart (Orchard's one retry policy, `RetryPolicy`).
    static let retry = RetryPolicy(attempts: 6, base: .milliseconds(200), cap: .seconds(10))

    private enum PushOutcome: Sendable { case delivered, invalidToken(String), retry(String), failed(String) }

    private func handle(_ outcome: PushOutcome, id: String, attempt: Int) async {
        switch outcome {
        case .delivered:
            OrchardMetrics.apnsPushes(outcome: "delivered").increment()
        case .invalidToken(let reason):
            OrchardMetrics.apnsPushes(outcome: "invalid-token").increment()
            logger.info("push token invalid", metadata: ["enrollment": "\(id)", "reason": "\(reason)"])
            _ = try? await database.withConnection { c in try EnrollmentStore.markPushTokenInvalid(c, id: id) }
        case .retry(let reason) where Self.retry.allowsRetry(after: attempt + 1):
            OrchardMetrics.apnsPushes(outcome: "retried").increment()
            logger.info("push will be retried", metadata: ["enrollment": "\(id)", "reason": "\(reason)", "attempt": "\(attempt + 1)"])
            let delay = Self.retry.delay(after: attempt + 1)
            retrying += 1
            Task {
                try? await Task.sleep(for: delay)
                await self.requeue(id, attempt: attempt + 1)
            }
        case .retry(let reason), .failed(let reason):
            OrchardMetrics.apnsPushes(outcome: "failed").increment()
            logger.warning("push failed", metadata: ["enrollment": "\(id)", "reason": "\(reason)"])
        }
    }

    private func requeue(_ id: String, attempt: Int) {
        retrying -= 1
        pending[id] = max(pending[id] ?? 0, attempt)
        reportOutstanding()
        wakeUp()
    }

    private static func send(client: HTTPClient, baseURL: String, topic: String, token: [UInt8], magic: String) async -> PushOutcome {
        var request = HTTPClientRequest(url: "\(baseURL)/3/device/\(token.hexString)")
        request.method = .POST
        request.headers.add(name: "apns-topic", value: topic)
        request.headers.add(name: "apns-priority", value: "10")
        request.headers.add(name: "apns-expiration", value: String(Int(Date().timeIntervalSince1970) + 86400))
        request.headers.add(name: "content-type", value: "application/json")
        let payload = try! JSONSerialization.data(withJSONObject: ["mdm": magic])
        request.body = .bytes(ByteBuffer(bytes: payload))
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let body = try await response.body.collect(upTo: 64 * 1024)
            let reason = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["reason"] as? String ?? ""
            switch response.status.code {
            case 200: return .delivered
            case 410: return .invalidToken(reason.isEmpty ? "Unregistered" : reason)
            case 400 where reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic": return .invalidToken(reason)
            case 429, 500...599: return .retry("HTTP \(response.status.code) \(reason)")
            default: return .failed("HTTP \(response.status.code) \(reason)")
            }
        } catch {
            return .retry("\(error)")
        }
    }

    /// The HTTP/2 client for the current certificate, rebuilt when the stored certificate changes
    /// (checked at most every 10 s, so replicas pick up an upload made through another).
    private func currentClient() async throws -> (HTTPClient, PushCertificate)? {
        // Also "no certificate" is remembered for those 10 s: a check-in must not cost a query for it.
        if Date().timeIntervalSince(checkedAt) < 10 { return client }
        guard let cert = try await certificates.load() else {
            checkedAt = Date()
            try? await client?.0.shutdown()
            client = nil
            return nil
        }
        checkedAt = Date()
        if let client, client.1.uploadedAt == cert.uploadedAt { return client }
        try? await client?.0.shutdown()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: cert.identity.certificate.der, format: .der))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: try cert.identity.key.derRepresentation(), format: .der))
        if !trustRoots.isEmpty {
            tls.trustRoots = .certificates(try trustRoots.map { try NIOSSLCertificate(bytes: $0.der, format: .der) })
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.httpVersion = .automatic
        let made = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        client = (made, cert)
        return client
    }
}

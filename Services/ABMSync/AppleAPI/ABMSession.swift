import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchardCore

/// Apple's device-assignment API as one server token sees it (REFERENCE §4.2, §4.4): a session from
/// `GET /session` (OAuth 1.0a), `X-ADM-Auth-Session` on every call and adopted from every answer,
/// `X-Server-Protocol-Version: 10` and a `User-Agent` everywhere. Re-authenticates on 401, or 403 whose
/// body says FORBIDDEN, once per call; `T_C_NOT_SIGNED` stops at once (an ABM administrator must accept
/// new terms: retrying cannot help); 429 and 503 wait `Retry-After`, network errors back off with jitter.
actor ABMSession {
    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Apple's new terms must be accepted in ABM before this token works again.
    struct TermsNotSigned: Error, CustomStringConvertible {
        var description: String { "Apple Business Manager's terms and conditions changed: an administrator must accept them in ABM (T_C_NOT_SIGNED)" }
    }

    /// Apple refused the call, or did not answer after every retry.
    struct Refused: Error, CustomStringConvertible {
        let status: Int
        let body: String
        var description: String { status == 0 ? "no answer from Apple: \(body)" : "Apple answered \(status): \(body.prefix(200))" }
    }

    static let protocolVersion = "10"
    static let userAgent = "Orchard-abm-sync/1.0"

    private let baseURL: String
    private let credentials: OAuth1.Credentials
    private let client: HTTPClient
    private let maxAttempts: Int
    private var session: String?

    init(baseURL: String, credentials: OAuth1.Credentials, client: HTTPClient, maxAttempts: Int = 5) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.credentials = credentials
        self.client = client
        self.maxAttempts = maxAttempts
    }

    /// One API call (`path` such as `/account`), with the session, retries and re-authentication above.
    func call(_ method: HTTPMethod, _ path: String, json: [UInt8]? = nil) async throws -> Answer {
        var reauthenticated = false
        var attempt = 0
        while true {
            attempt += 1
            if session == nil { session = try await authenticate() }
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = method
            request.headers.add(name: "User-Agent", value: Self.userAgent)
            request.headers.add(name: "X-Server-Protocol-Version", value: Self.protocolVersion)
            request.headers.add(name: "X-ADM-Auth-Session", value: session ?? "")
            if let json {
                request.headers.add(name: "Content-Type", value: "application/json;charset=UTF8")
                request.body = .bytes(ByteBuffer(bytes: json))
            }
            let answer: Answer
            do { answer = try await send(request) } catch {
                guard attempt < maxAttempts else { throw Refused(status: 0, body: "\(error)") }
                try await Task.sleep(for: backoff(attempt))
                continue
            }
            switch answer.status {
            case 401 where !reauthenticated, 403 where !reauthenticated && answer.text.contains("FORBIDDEN"):
                session = nil
                reauthenticated = true
            case 403 where answer.text.contains("T_C_NOT_SIGNED"):
                throw TermsNotSigned()
            case 429, 503:
                guard attempt < maxAttempts else { throw Refused(status: answer.status, body: answer.text) }
                try await Task.sleep(for: retryAfter ?? backoff(attempt))
            case 200..<300:
                return answer
            default:
                throw Refused(status: answer.status, body: answer.text)
            }
        }
    }

    private var retryAfter: Duration?

    /// `GET /session` signed with OAuth 1.0a: the session token.
    private func authenticate() async throws -> String {
        var attempt = 0
        while true {
            attempt += 1
            let url = baseURL + "/session"
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers.add(name: "User-Agent", value: Self.userAgent)
            request.headers.add(name: "X-Server-Protocol-Version", value: Self.protocolVersion)
            request.headers.add(name: "Authorization", value: OAuth1.authorization(
                method: "GET", url: URL(string: url)!, credentials: credentials, nonce: RandomUUID.lowercased(),
                timestamp: Int(Date().timeIntervalSince1970)))
            let answer: Answer
            do { answer = try await send(request, adoptSession: false) } catch {
                guard attempt < maxAttempts else { throw Refused(status: 0, body: "\(error)") }
                try await Task.sleep(for: backoff(attempt))
                continue
            }
            switch answer.status {
            case 200:
                guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
                      let token = object["auth_session_token"] as? String, !token.isEmpty else {
                    throw Refused(status: 200, body: "no auth_session_token in the /session answer")
                }
                return token
            case 403 where answer.text.contains("T_C_NOT_SIGNED"):
                throw TermsNotSigned()
            case 429, 503:
                guard attempt < maxAttempts else { throw Refused(status: answer.status, body: answer.text) }
                try await Task.sleep(for: retryAfter ?? backoff(attempt))
            default:
                throw Refused(status: answer.status, body: answer.text)
            }
        }
    }

    private func send(_ request: HTTPClientRequest, adoptSession: Bool = true) async throws -> Answer {
        let response = try await client.execute(request, timeout: .seconds(30))
        var buffer = try await response.body.collect(upTo: 16 << 20)
        if adoptSession, let next = response.headers.first(name: "X-ADM-Auth-Session"), !next.isEmpty { session = next }
        retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { .seconds(min(max($0, 1), 300)) }
        return Answer(status: Int(response.status.code), body: buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    /// 1, 2, 4… seconds (at most 60), each with up to a quarter more at random, so that replicas spread out.
    private func backoff(_ attempt: Int) -> Duration {
        let base = min(60.0, pow(2.0, Double(attempt - 1)))
        return .milliseconds(Int(base * 1000 * (1 + Double.random(in: 0..<0.25))))
    }
}

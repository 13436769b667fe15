import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchardCore

/// The session each server token holds with ABM (REFERENCE §4.2), shared by every call of this process: one
/// `GET /session` per token until ABM ends it, not one per call. ABM may hand out the next session in any answer,
/// after which the one used may stop working, so a token's calls take turns (`exclusive`): each starts with the
/// session the previous answer gave. Calls of different tokens, and sleeps between retries, run side by side. A
/// token whose credentials change (a new `.p7m`) starts a new session.
actor ABMSessionStore {
    private var sessions: [String: (credentials: String, session: String)] = [:]
    private var busy: Set<String> = []
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Runs `body` when no other call of `tokenID` is out.
    func exclusive<T: Sendable>(_ tokenID: String, _ body: @Sendable () async throws -> T) async throws -> T {
        if busy.contains(tokenID) {
            await withCheckedContinuation { waiting[tokenID, default: []].append($0) }  // handed the turn by the call before
        } else {
            busy.insert(tokenID)
        }
        defer {
            if let next = waiting[tokenID]?.first {
                waiting[tokenID]?.removeFirst()
                next.resume()
            } else {
                busy.remove(tokenID)
                waiting[tokenID] = nil
            }
        }
        return try await body()
    }

    func session(_ tokenID: String, credentials: String) -> String? {
        sessions[tokenID].flatMap { $0.credentials == credentials ? $0.session : nil }
    }

    func set(_ tokenID: String, credentials: String, session: String) { sessions[tokenID] = (credentials, session) }

    /// ABM ended `session`: the token's next call opens a new one.
    func end(_ tokenID: String, session: String) {
        if sessions[tokenID]?.session == session { sessions[tokenID] = nil }
    }
}

/// Apple's device-assignment API as one server token sees it (REFERENCE §4.2, §4.4): the token's session
/// from `ABMSessionStore` (`GET /session` with OAuth 1.0a only when there is none), `X-ADM-Auth-Session` on
/// every call and adopted from every answer, `X-Server-Protocol-Version: 10` and a `User-Agent` everywhere.
/// Re-authenticates on 401, or 403 whose body says FORBIDDEN, once per call. `T_C_NOT_SIGNED` stops at once
/// (an ABM administrator must accept new terms: retrying cannot help); 429 and 503 wait `Retry-After`,
/// network errors back off with jitter.
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
    private let retry: RetryPolicy
    private let store: ABMSessionStore
    private let tokenID: String
    /// What identifies the credentials in the store: a new `.p7m` gets a new session.
    private let credentialsKey: String

    init(baseURL: String, credentials: OAuth1.Credentials, client: HTTPClient, maxAttempts: Int = 5,
         store: ABMSessionStore, tokenID: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.credentials = credentials
        self.client = client
        self.retry = RetryPolicy(attempts: maxAttempts)
        self.store = store
        self.tokenID = tokenID
        self.credentialsKey = credentials.consumerKey + "\u{0}" + credentials.token
    }

    /// One API call (`path` such as `/account`), with the session, retries and re-authentication above.
    func call(_ method: HTTPMethod, _ path: String, json: [UInt8]? = nil) async throws -> Answer {
        var reauthenticated = false
        var attempt = 0
        while true {
            attempt += 1
            let (answer, session): (Answer, String)
            do {
                (answer, session) = try await store.exclusive(tokenID) { [self] in try await exchange(method, path, json: json) }
            } catch let error as TermsNotSigned {
                throw error
            } catch let error as Refused {
                throw error
            } catch {
                guard retry.allowsRetry(after: attempt) else { throw Refused(status: 0, body: "\(error)") }
                try await Task.sleep(for: retry.delay(after: attempt))
                continue
            }
            switch answer.status {
            case 401 where !reauthenticated, 403 where !reauthenticated && answer.text.contains("FORBIDDEN"):
                await store.end(tokenID, session: session)
                reauthenticated = true
            case 403 where answer.text.contains("T_C_NOT_SIGNED"):
                throw TermsNotSigned()
            case 429, 503:
                guard retry.allowsRetry(after: attempt) else { throw Refused(status: answer.status, body: answer.text) }
                try await Task.sleep(for: retry.delay(after: attempt, retryAfter: retryAfter))
            case 200..<300:
                return answer
            default:
                throw Refused(status: answer.status, body: answer.text)
            }
        }
    }

    /// One request with the token's session (opened first when it has none), during the token's turn.
    private func exchange(_ method: HTTPMethod, _ path: String, json: [UInt8]?) async throws -> (Answer, String) {
        let session: String
        if let current = await store.session(tokenID, credentials: credentialsKey) {
            session = current
        } else {
            session = try await authenticate()
            await store.set(tokenID, credentials: credentialsKey, session: session)
        }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "X-Server-Protocol-Version", value: Self.protocolVersion)
        request.headers.add(name: "X-ADM-Auth-Session", value: session)
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json;charset=UTF8")
            request.body = .bytes(ByteBuffer(bytes: json))
        }
        return (try await send(request), session)
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
                guard retry.allowsRetry(after: attempt) else { throw Refused(status: 0, body: "\(error)") }
                try await Task.sleep(for: retry.delay(after: attempt))
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
                guard retry.allowsRetry(after: attempt) else { throw Refused(status: answer.status, body: answer.text) }
                try await Task.sleep(for: retry.delay(after: attempt, retryAfter: retryAfter))
            default:
                throw Refused(status: answer.status, body: answer.text)
            }
        }
    }

    private func send(_ request: HTTPClientRequest, adoptSession: Bool = true) async throws -> Answer {
        let response = try await client.execute(request, timeout: .seconds(30))
        var buffer = try await response.body.collect(upTo: 16 << 20)
        if adoptSession, let next = response.headers.first(name: "X-ADM-Auth-Session"), !next.isEmpty {
            await store.set(tokenID, credentials: credentialsKey, session: next)
        }
        retryAfter = RetryPolicy.retryAfter(response.headers.first(name: "Retry-After"))
        return Answer(status: Int(response.status.code), body: buffer.readBytes(length: buffer.readableBytes) ?? [])
    }
}

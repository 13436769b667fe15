import Foundation
import OrchardCore
import HTTPTypes
import Hummingbird
import OrchardMessaging
import OrchardObservability
import OrchardStorage

/// `/healthz` (the process is up), `/readyz` (Kafka and PostgreSQL answer, and every consumer that serves
/// requests has its partitions: before that, requests to this replica would wait) and `/metrics`.
public enum HealthRoutes {
    public static func add<Context: RequestContext>(to router: Router<Context>, database: Database,
                                                    producer: KafkaProducer,
                                                    consumersAssigned: @escaping @Sendable () -> Bool = { true }) {
        router.get("healthz") { _, _ in
            jsonResponse(.ok, ["status": "ok"])
        }
        router.get("readyz") { _, _ in
            async let kafka = producer.isBrokerReachable()
            async let postgres = database.ping()
            let (k, p) = await (kafka, postgres)
            let assigned = consumersAssigned()
            return jsonResponse(k && p && assigned ? .ok : .serviceUnavailable,
                                ["kafka": k ? "ok" : "unreachable", "postgres": p ? "ok" : "unreachable",
                                 "consumers": assigned ? "assigned" : "waiting for partitions"])
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: OrchardMetrics.render())))
        }
    }
}

/// A small JSON object response.
public func jsonResponse(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: JSONText.object(object))))
}

/// The JSON responses every service writes (error documents, discovery, OAuth 2): keys sorted, slashes as they are;
/// `noStore` adds `Cache-Control: no-store` (tokens, per-user answers).
public func jsonResponse(_ status: HTTPResponse.Status, object: Any, noStore: Bool = false) -> Response {
    let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    return jsonResponse(status, body: Array(body), noStore: noStore)
}

public func jsonResponse<T: Encodable>(_ status: HTTPResponse.Status, encoding value: T, noStore: Bool = false) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return jsonResponse(status, body: Array((try? encoder.encode(value)) ?? Data("{}".utf8)), noStore: noStore)
}

/// JSON already written.
public func jsonResponse(_ status: HTTPResponse.Status, body: [UInt8], noStore: Bool = false) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if noStore { headers[.cacheControl] = "no-store" }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

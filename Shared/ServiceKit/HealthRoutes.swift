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

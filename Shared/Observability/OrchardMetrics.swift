import CoreMetrics
import Foundation
import Prometheus

/// Every metric Orchard's own code records, named and described once, kept in one swift-prometheus
/// registry per process that `/metrics` renders. The same registry backs swift-metrics (bootstrapped
/// the first time the registry is used), so metrics recorded by libraries through that API appear
/// beside ours. Names follow Prometheus conventions (`orchard_..._total`, `..._seconds`).
public enum OrchardMetrics {
    /// Latency buckets, from 0.5 ms to 10 s: enrollment steps are milliseconds, time-outs seconds.
    public static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = latencyBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// The exposition text for `/metrics`.
    public static func render() -> String { registry.emitToString() }

    // MetricNameDescriptor holds only immutable strings but is not marked Sendable: hence nonisolated(unsafe).
    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "orchard", metricName: metric, unitName: unit, helpText: help)
    }

    // MARK: HTTP

    nonisolated(unsafe) private static let httpRequestsName = name("http_requests", "total", "HTTP requests served")
    public static func httpRequests(route: String, method: String, status: Int) -> Prometheus.Counter {
        registry.makeCounter(descriptor: httpRequestsName, labels: [("method", method), ("route", route), ("status", String(status))])
    }

    nonisolated(unsafe) private static let httpLatencyName = name("http_request", "seconds", "HTTP request latency")
    public static func httpRequestLatency(route: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: httpLatencyName, labels: [("route", route)], buckets: latencyBuckets)
    }

    // MARK: Kafka

    nonisolated(unsafe) private static let produceName = name("kafka_produce", "seconds", "Time from produce to broker acknowledgement")
    public static func produceLatency(topic: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: produceName, labels: [("topic", topic)], buckets: latencyBuckets)
    }

    nonisolated(unsafe) private static let consumedName = name("kafka_consumed", "total", "Messages handled successfully")
    public static func consumed(topic: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: consumedName, labels: [("topic", topic)])
    }

    nonisolated(unsafe) private static let deadLettersName = name("kafka_dead_letters", "total", "Messages sent to the dead-letter topic")
    public static func deadLetters(topic: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: deadLettersName, labels: [("topic", topic)])
    }

    nonisolated(unsafe) private static let requestName = name("request", "seconds", "Request/reply round trip over Kafka")
    public static func requestLatency(type: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: requestName, labels: [("type", type)], buckets: latencyBuckets)
    }

    nonisolated(unsafe) private static let expiredName = name("requests_expired", "total", "Requests skipped because their deadline had passed")
    public static func requestsExpired(type: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: expiredName, labels: [("type", type)])
    }

    // MARK: ABM

    nonisolated(unsafe) private static let abmDaysLeftName = name("abm_token", "days_left",
                                                                 "Days until an ABM server token expires")
    public static func abmTokenDaysLeft(token: String) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: abmDaysLeftName, labels: [("token", token)])
    }

    // MARK: APNs

    nonisolated(unsafe) private static let apnsName = name("apns_pushes", "total", "APNs pushes")
    public static func apnsPushes(outcome: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: apnsName, labels: [("outcome", outcome)])
    }

    nonisolated(unsafe) private static let apnsOutstandingName = name("apns_outstanding", "pushes",
                                                                       "Pushes queued, in flight or waiting to be retried")
    public static func apnsOutstanding() -> Prometheus.Gauge {
        registry.makeGauge(descriptor: apnsOutstandingName)
    }
}

extension Duration {
    /// The time since a `DispatchTime.now()` reading.
    public static func since(_ start: DispatchTime) -> Duration {
        .nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds))
    }
}

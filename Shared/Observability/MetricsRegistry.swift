import Foundation
import NIOConcurrencyHelpers

/// Counters and histograms rendered in Prometheus' text format for `/metrics`.
/// One process-wide registry; names follow Prometheus conventions (`orchard_..._total`).
public final class MetricsRegistry: Sendable {
    public static let shared = MetricsRegistry()

    private struct Series: Hashable { let name: String; let labels: [String: String] }
    private struct HistogramState { var buckets: [Int]; var sum: Double; var count: Int }
    private struct State {
        var help: [String: (type: String, text: String)] = [:]
        var counters: [Series: Double] = [:]
        var gauges: [Series: Double] = [:]
        var histograms: [Series: HistogramState] = [:]
    }

    /// Latency buckets in seconds, from 0.5 ms to 10 s.
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func increment(_ name: String, by value: Double = 1, labels: [String: String] = [:], help: String = "") {
        state.withLockedValue { s in
            if s.help[name] == nil { s.help[name] = ("counter", help) }
            s.counters[Series(name: name, labels: labels), default: 0] += value
        }
    }

    public func set(_ name: String, _ value: Double, labels: [String: String] = [:], help: String = "") {
        state.withLockedValue { s in
            if s.help[name] == nil { s.help[name] = ("gauge", help) }
            s.gauges[Series(name: name, labels: labels)] = value
        }
    }

    public func observe(_ name: String, _ value: Double, labels: [String: String] = [:], help: String = "") {
        let buckets = Self.latencyBuckets
        state.withLockedValue { s in
            if s.help[name] == nil { s.help[name] = ("histogram", help) }
            let key = Series(name: name, labels: labels)
            var h = s.histograms[key] ?? HistogramState(buckets: Array(repeating: 0, count: buckets.count), sum: 0, count: 0)
            for (i, bound) in buckets.enumerated() where value <= bound { h.buckets[i] += 1 }
            h.sum += value
            h.count += 1
            s.histograms[key] = h
        }
    }

    /// The exposition text.
    public func render() -> String {
        state.withLockedValue { s in
            var out = ""
            for name in s.help.keys.sorted() {
                let (type, help) = s.help[name]!
                out += "# HELP \(name) \(help.isEmpty ? name : help)\n# TYPE \(name) \(type)\n"
                for (series, value) in s.counters where series.name == name {
                    out += "\(name)\(labelText(series.labels)) \(format(value))\n"
                }
                for (series, value) in s.gauges where series.name == name {
                    out += "\(name)\(labelText(series.labels)) \(format(value))\n"
                }
                for (series, h) in s.histograms where series.name == name {
                    for (i, bound) in Self.latencyBuckets.enumerated() {
                        out += "\(name)_bucket\(labelText(series.labels, extra: ("le", format(bound)))) \(h.buckets[i])\n"
                    }
                    out += "\(name)_bucket\(labelText(series.labels, extra: ("le", "+Inf"))) \(h.count)\n"
                    out += "\(name)_sum\(labelText(series.labels)) \(format(h.sum))\n"
                    out += "\(name)_count\(labelText(series.labels)) \(h.count)\n"
                }
            }
            return out
        }
    }
}

private func labelText(_ labels: [String: String], extra: (String, String)? = nil) -> String {
    var pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    if let extra { pairs.append(extra) }
    guard !pairs.isEmpty else { return "" }
    let escaped = pairs.map { key, value in
        "\(key)=\"\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\""
    }
    return "{" + escaped.joined(separator: ",") + "}"
}

private func format(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

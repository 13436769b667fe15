import Foundation
import OrchardTestSupport

/// The gateway's own view of latency, from its /metrics histograms read before and after a timed
/// phase: HTTP requests by route (`orchard_http_request_seconds`) and its Kafka requests to other
/// services by type (`orchard_request_seconds`). Separates time in the gateway and behind it from
/// time in the network stack and the benchmark client.
struct ServerLatency {
    struct Series { var buckets: [Double: Double] = [:]; var sum = 0.0 }
    let series: [String: Series]

    static let metrics = [("orchard_http_request_seconds", "route"), ("orchard_request_seconds", "type")]

    static func snapshot(_ gateway: String) async throws -> ServerLatency {
        let text = try await http(.GET, "\(gateway)/metrics").text
        var series: [String: Series] = [:]
        for line in text.split(separator: "\n") {
            guard let (metric, label) = metrics.first(where: { line.hasPrefix($0.0 + "_") }),
                  let labelStart = line.range(of: "\(label)=\""),
                  let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            let name = "\(label) " + String(line[labelStart.upperBound...].prefix { $0 != "\"" })
            if line.hasPrefix(metric + "_bucket"), let leStart = line.range(of: "le=\"") {
                let le = String(line[leStart.upperBound...].prefix { $0 != "\"" })
                series[name, default: Series()].buckets[le == "+Inf" ? .infinity : Double(le) ?? .infinity] = value
            } else if line.hasPrefix(metric + "_sum") {
                series[name, default: Series()].sum = value
            }
        }
        return ServerLatency(series: series)
    }

    /// Each series used since `earlier`: count, mean, and the share over 10, 25 and 50 ms.
    func report(since earlier: ServerLatency) -> String {
        var lines = ["in the gateway (its histograms): count, mean, share over 10 / 25 / 50 ms"]
        for name in series.keys.sorted() where !name.hasSuffix("/metrics") {
            let now = series[name]!, before = earlier.series[name] ?? Series()
            func count(_ bound: Double) -> Double { (now.buckets[bound] ?? 0) - (before.buckets[bound] ?? 0) }
            let total = count(.infinity)
            guard total > 0 else { continue }
            func over(_ bound: Double) -> Double { 100 * (total - count(bound)) / total }
            lines.append(String(format: "  %@: %.0f, mean %.1f ms, %.1f%% / %.2f%% / %.2f%%", name, total,
                                (now.sum - before.sum) / total * 1000, over(0.01), over(0.025), over(0.05)))
        }
        return lines.joined(separator: "\n")
    }
}

import Foundation
import OrchardCore
import HTTPTypes
import Hummingbird
import OrchardObservability

/// Gives every request a correlation id (the caller's `X-Correlation-ID`, or a new one), puts it in
/// the request's log metadata and the response headers, and records request counts and latencies.
public struct ObservabilityMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var headerName: HTTPField.Name { HTTPField.Name("X-Correlation-ID")! }

    public init() {}

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let supplied = request.headers[Self.headerName].flatMap { isSafeCorrelationID($0) ? $0 : nil }
        let correlationID = supplied ?? RandomUUID.lowercased()
        context.logger[metadataKey: "correlation-id"] = .string(correlationID)
        let started = DispatchTime.now()
        var status = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            OrchardMetrics.httpRequests(route: route, method: request.method.rawValue, status: status).increment()
            OrchardMetrics.httpRequestLatency(route: route).record(.since(started))
        }
        do {
            var response = try await next(request, context)
            response.headers[Self.headerName] = correlationID
            status = Int(response.status.code)
            return response
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            status = 404
            throw HTTPError(.notFound, message: "no route for \(request.method.rawValue) \(request.uri.path)")
        } catch let error as any HTTPResponseError {
            status = Int(error.status.code)
            if status >= 500 { context.logger.error("request failed: \(error)") }
            throw error
        } catch {
            if let mapped = DependencyFailure.httpError(for: error) {
                status = Int(mapped.status.code)
                context.logger.warning("request failed: \(error)")
                throw mapped
            }
            context.logger.error("request failed: \(error)")
            throw error
        }
    }
}

/// Correlation ids end up in logs and headers: accept only short, plain tokens from clients.
func isSafeCorrelationID(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 128 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
}

extension RequestContext {
    /// The request's correlation id, set by `ObservabilityMiddleware`.
    public var correlationID: String {
        logger[metadataKey: "correlation-id"]?.description ?? RandomUUID.lowercased()
    }
}

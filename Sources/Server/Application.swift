import Foundation
import Hummingbird
import Logging
import Reports
import ResultStore
import Service

/// The daemon's HTTP application: the API under `/api`, the page and its charts, `/metrics`, `/openapi.yaml`, and
/// the health routes. This is the test seam: tests build it on port 0 and talk to it over HTTP.
///
/// `onRunning` gets the bound port once the server listens (the real one when `configuration.port` is 0).
public func buildApplication(
    state: ServerState, logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(state: state),
        // A connection that sends nothing for this long is closed: clients that open connections and stall (or
        // stop half-way through a request) cannot hold the server's connections for ever.
        server: .http1(configuration: .init(idleTimeout: .seconds(Int64(state.configuration.idleSeconds)))),
        configuration: .init(
            address: .hostname(state.configuration.host, port: state.configuration.port), serverName: "extrapolate"),
        onServerRunning: { channel in
            await onRunning(channel.localAddress?.port ?? state.configuration.port)
            // Read every run's curves once now, not on the first visit: a lab's store takes a second or two
            // (each run's are then kept until that run changes). A failure here is the first request's to report.
            Task { _ = try? await state.curves() }
        },
        logger: logger)
}

/// Every route and middleware of the server, without the server: what `buildApplication` serves, and what the `api`
/// fuzz target calls in-process (no socket), request after request.
public func buildRouter(state: ServerState) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: JSONErrorMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: state.configuration.maximumBodyBytes))
    router.add(middleware: TokenMiddleware(token: state.configuration.token))
    router.addRoutes(HealthController(state: state).routes)
    router.addRoutes(APIController(state: state).routes, atPath: "/api")
    router.addRoutes(PageController(state: state).routes)
    return router
}

/// `/healthz`, `/readyz`, `/metrics`, `/openapi.yaml`.
struct HealthController {
    typealias Context = BasicRequestContext

    let state: ServerState

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("healthz") { _, _ in try JSONBody.response(["status": "ok"]) }
        routes.get("readyz") { _, _ in
            struct Body: Codable {
                var ready: Bool
                var store: String
                var watching: Bool
            }
            var store = "ok"
            do { _ = try await state.store.counts() } catch { store = "\(error)" }
            // Without a daemon (a store served read-only) nothing needs to be watching.
            let watching = state.daemon?.isWatching ?? true
            let ready = store == "ok" && watching
            return try JSONBody.response(
                Body(ready: ready, store: store, watching: watching), status: ready ? .ok : .serviceUnavailable)
        }
        routes.get("metrics") { _, _ in
            let alerts = try await state.alerts(try await state.curves())
            return JSONBody.text(
                try await state.metrics.exposition(store: state.store, daemon: state.daemon, alerts: alerts),
                type: "text/plain; version=0.0.4; charset=utf-8")
        }
        routes.get("openapi.yaml") { _, _ in JSONBody.bytes(PackageResources.http_api_yaml, type: "application/yaml") }
        return routes
    }
}

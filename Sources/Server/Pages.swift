import Foundation
import Hummingbird
import Reports
import ResultStore

/// The web page: one HTML document, its script and style (embedded in the binary), and the charts it loads, drawn
/// on the server by `Reports`' SVG renderer (the same charts as the nightly report).
struct PageController {
    typealias Context = BasicRequestContext

    let state: ServerState

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/") { _, _ in JSONBody.bytes(PackageResources.index_html, type: "text/html; charset=utf-8") }
        routes.get("app.js") { _, _ in JSONBody.bytes(PackageResources.app_js, type: "text/javascript; charset=utf-8") }
        routes.get("style.css") { _, _ in JSONBody.bytes(PackageResources.style_css, type: "text/css; charset=utf-8") }
        routes.get("charts/overview.svg") { request, _ in
            try await state.answer(to: request, type: Self.svgType) {
                ExtrapolationCharts.overview(try await newest(shown: request))
            }
        }
        routes.get("charts/ratios.html") { request, _ in
            JSONBody.text(
                ExtrapolationCharts.ratioTable(try await newest(shown: request)), type: "text/html; charset=utf-8")
        }
        routes.get("charts/compare.svg") { request, _ in
            let query = request.uri.queryParameters
            let ids = try ["a", "b"].map { name -> Int64 in
                guard let id = query.get(name).flatMap(Int64.init) else { throw APIError.badRequest("give ?a=ID&b=ID") }
                return id
            }
            var rows: [StoredResultsReport.Row] = []
            for id in Set(ids) { rows += try await state.rows(checkpoint: id) }
            let curves = Extrapolation.curves(rows)
            return svg(ExtrapolationCharts.comparison(curves, a: ids[0], b: ids[1]))
        }
        routes.get("charts/runs/:run/checkpoints.svg") { request, context in
            let run = try context.parameters.decoded("run")
            return try await state.answer(to: request, type: Self.svgType) {
                ExtrapolationCharts.checkpoints(try await curves(run: run), run: run)
            }
        }
        routes.get("charts/runs/:run/steps.svg") { request, context in
            let run = try context.parameters.decoded("run")
            return try await state.answer(to: request, type: Self.svgType) {
                ExtrapolationCharts.bySteps(try await curves(run: run), run: run)
            }
        }
        routes.get("charts/runs/:run/passkey-lengths.svg") { request, context in
            let run = try context.parameters.decoded("run")
            return try await state.answer(to: request, type: Self.svgType) {
                StoredPasskeyReport(try await passkeyRows(run: run)).lengthsSVG(run: run)
            }
        }
        routes.get("charts/runs/:run/passkey-steps.svg") { request, context in
            let run = try context.parameters.decoded("run")
            return try await state.answer(to: request, type: Self.svgType) {
                StoredPasskeyReport(try await passkeyRows(run: run)).stepsSVG(run: run)
            }
        }
        routes.get("charts/passkey.svg") { request, _ in
            let query = request.uri.queryParameters
            guard let id = query.get("checkpoint").flatMap(Int64.init) else {
                throw APIError.badRequest("give ?checkpoint=ID (and &series=model or an extension's name)")
            }
            let report = StoredPasskeyReport(try await state.rows(checkpoint: id))
            let series = query.get("series") ?? "model"
            guard report.rows.contains(where: { $0.series == series }),
                let heatmap = report.heatmapSVG(checkpoint: id, series: series)
            else { throw APIError.notFound("no passkey results of series '\(series)' for checkpoint \(id)") }
            return svg(heatmap)
        }
        routes.get("charts/positions.svg") { request, _ in
            guard let id = request.uri.queryParameters.get("checkpoint").flatMap(Int64.init) else {
                throw APIError.badRequest("give ?checkpoint=ID")
            }
            let rows = try await state.rows(checkpoint: id).filter { $0.outcome == .evaluated && $0.passkey == nil }
            guard let first = rows.first else { throw APIError.notFound("no evaluated results for checkpoint \(id)") }
            let lengths = rows.sorted { ($0.series, $0.length) < ($1.series, $1.length) }.compactMap { row in
                row.result.map { (label: "\(Plot.format(row.multiple))L (\(row.length))", buckets: $0.positions) }
            }
            let name = first.step.map { "step \($0)" } ?? URL(fileURLWithPath: first.checkpoint).lastPathComponent
            return svg(
                ExtrapolationCharts.positions(
                    lengths, title: "\(first.run) \(name): loss by position", trainedLength: first.trainedLength))
        }
        return routes
    }

    /// The newest curve of each run but those `?hide=` names (comma-separated; the page's hidden runs).
    private func newest(shown request: Request) async throws -> [ExtrapolationCurve] {
        let hidden = Set(
            (request.uri.queryParameters.get("hide") ?? "").split(separator: ",").map {
                String($0).removingPercentEncoding ?? String($0)
            })
        return Extrapolation.newest(try await state.curves()).filter { !hidden.contains($0.run) }
    }

    private func passkeyRows(run: String) async throws -> [StoredResultsReport.Row] {
        let rows = try await state.passkeyRows(run: run)
        guard !rows.isEmpty else { throw APIError.notFound("no passkey results for a run named '\(run)' yet") }
        return rows
    }

    private func curves(run: String) async throws -> [ExtrapolationCurve] {
        let curves = try await state.curves(run: run)
        guard !curves.isEmpty else { throw APIError.notFound("no results for a run named '\(run)' yet") }
        return curves
    }

    static let svgType = "image/svg+xml; charset=utf-8"
    private func svg(_ text: String) -> Response { JSONBody.text(text, type: Self.svgType) }
}

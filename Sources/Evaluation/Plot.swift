import Foundation

/// Self-contained SVG line plots (log-scaled x axis) for sweep results.
public enum Plot {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// A plot with a log₂ x axis and a linear (or log₁₀) y axis.
    public static func svg(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false,
                           markers: [(x: Double, label: String)] = []) -> String {
        // The legend column grows with the longest series name (≈ 7 px a character at 12 px Helvetica).
        let right = max(170.0, 48 + 7 * Double(series.map(\.name.count).max() ?? 0))
        let (width, height) = (550.0 + right, 440.0)
        let (left, top, bottom) = (70.0, 40.0, 56.0)
        let all = series.flatMap(\.points).filter { $0.x > 0 && $0.y.isFinite && (!logY || $0.y > 0) }
        guard !all.isEmpty else { return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"80\"><text x=\"10\" y=\"40\">no data</text></svg>" }
        func ty(_ y: Double) -> Double { logY ? log10(y) : y }
        let xs = all.map { log2($0.x) }, ys = all.map { ty($0.y) }
        var (x0, x1) = (xs.min()!, xs.max()!), (y0, y1) = (ys.min()!, ys.max()!)
        if x1 - x0 < 1e-9 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.08
        (y0, y1) = (y0 - pad, y1 + pad)
        func px(_ x: Double) -> Double { left + (log2(x) - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (ty(y) - y0) / (y1 - y0) * (height - top - bottom) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        func fmt(_ v: Double) -> String {
            v >= 1000 || v == v.rounded() ? String(format: "%.0f", v) : (v >= 10 ? String(format: "%.1f", v) : String(format: "%.3g", v))
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="15" font-weight="bold">\(esc(title))</text>

            """
        // x ticks at powers of two
        var tick = Int(x0.rounded(.up))
        while Double(tick) <= x1 + 1e-9 {
            let x = px(exp2(Double(tick)))
            svg += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(height - bottom)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(x)\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(fmt(exp2(Double(tick))))</text>\n"
            tick += max(1, Int((x1 - x0) / 8))
        }
        for k in 0...5 {
            let v = y0 + (y1 - y0) * Double(k) / 5
            let y = height - bottom - Double(k) / 5 * (height - top - bottom)
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - right)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(fmt(logY ? pow(10, v) : v))</text>\n"
        }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#333\"/>\n"
        for marker in markers where marker.x > 0 {
            let x = px(marker.x)
            svg += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(height - bottom)\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
            svg += "<text x=\"\(x + 4)\" y=\"\(top + 14)\" fill=\"#666\">\(esc(marker.label))</text>\n"
        }
        for (index, s) in series.enumerated() {
            let color = palette[index % palette.count]
            let points = s.points.filter { $0.x > 0 && $0.y.isFinite && (!logY || $0.y > 0) }.sorted { $0.x < $1.x }
            let path = points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            for p in points { svg += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"3\" fill=\"\(color)\"/>" }
            let ly = top + 10 + Double(index) * 18
            svg += "\n<line x1=\"\(width - right + 12)\" y1=\"\(ly)\" x2=\"\(width - right + 32)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(width - right + 38)\" y=\"\(ly + 4)\">\(esc(s.name))</text>\n"
        }
        svg += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 14)\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \((top + height - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        return svg + "</svg>\n"
    }
}

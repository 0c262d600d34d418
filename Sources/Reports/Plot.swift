import Foundation

/// Self-contained SVG line plots: log₂ or linear x axis, linear or log₁₀ y axis, ticks on round values, optional
/// interval bands, and vertical markers (the trained length). No script, no external resource: each series is a
/// `<g class="series" data-series="…">` and each point a `<circle data-x data-y>` with a `<title>`, so a browser
/// shows exact values on hover and a page's script can toggle series and read the points.
public enum Plot {
    /// One line of a plot.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// An interval per x (drawn as a translucent band behind the line).
        public var band: [(x: Double, lower: Double, upper: Double)]
        /// Points drawn hollow (e.g. buckets measured by few windows).
        public var hollow: Set<Int>
        /// A colour for the series (`#rrggbb`) instead of the palette's.
        public var color: String?
        /// Draw the band hatched: an interval that cannot be trusted (too few windows), not a confident band.
        public var hatched: Bool
        /// x values the series has no point at because they cannot be computed (a length past a learned position
        /// table), each with why: drawn as a cross on the x axis.
        public var missing: [(x: Double, reason: String)]

        public init(
            name: String, points: [(x: Double, y: Double)], band: [(x: Double, lower: Double, upper: Double)] = [],
            hollow: Set<Int> = [], color: String? = nil, hatched: Bool = false,
            missing: [(x: Double, reason: String)] = []
        ) {
            self.name = name
            self.points = points
            self.band = band
            self.hollow = hollow
            self.color = color
            self.hatched = hatched
            self.missing = missing
        }
    }

    /// A palette colour chosen by `name` alone (FNV-1a of its bytes), so a run keeps its colour whichever other
    /// runs are drawn beside it.
    public static func color(for name: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        // The high half: FNV's low bits mix poorly (alibi, rotary and t5 all fell on one colour modulo 10).
        return palette[Int((hash >> 32) % UInt64(palette.count))]
    }

    static let palette = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
        "#bcbd22", "#7f7f7f",
    ]

    /// The SVG document.
    /// - Parameter note: a line under the title (what hatched bands and crosses mean, where the numbers come from).
    /// - Parameter yIncludes: values the y axis spans whatever the data (0 and 1 for an accuracy).
    public static func svg(
        title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false, logX: Bool = true,
        markers: [(x: Double, label: String)] = [], note: String? = nil, yIncludes: [Double] = [],
        xValue: (Double) -> String = { format($0) }
    ) -> String {
        let right = max(170.0, 48 + 7 * Double(series.map(\.name.count).max() ?? 0))
        let frame = Frame(
            width: 550 + right, height: 440, left: 70, right: right, top: note == nil ? 40 : 54, bottom: 56)
        var values: [(x: Double, y: Double)] = []
        for s in series {
            values += s.points
            for b in s.band { values += [(x: b.x, y: b.lower), (x: b.x, y: b.upper)] }
        }
        values = values.filter { (!logX || $0.x > 0) && $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        // Crosses widen the x range (at any y already drawn), so a length that could not be computed is shown.
        if let y = values.first?.y {
            values += series.flatMap { $0.missing.map { (x: $0.x, y: y) } }.filter { !logX || $0.x > 0 }
        }
        guard !values.isEmpty else {
            return
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"80\"><text x=\"10\" y=\"40\">no data</text></svg>\n"
        }
        let scale = Scale(
            xs: values.map { $0.x }, ys: values.map { $0.y } + yIncludes, logX: logX, logY: logY, frame: frame)
        var svg = head(width: frame.width, height: frame.height, left: frame.left, title: title, note: note)
        svg += scale.gridAndTicks()
        svg +=
            "<rect x=\"\(frame.left)\" y=\"\(frame.top)\" width=\"\(frame.plotWidth)\" height=\"\(frame.plotHeight)\" "
            + "fill=\"none\" stroke=\"#333\"/>\n"
        for marker in markers where marker.x > 0 || !logX {
            let x = scale.px(marker.x)
            svg +=
                "<line x1=\"\(x)\" y1=\"\(frame.top)\" x2=\"\(x)\" y2=\"\(frame.height - frame.bottom)\" stroke=\"#999\" "
                + "stroke-dasharray=\"4 3\"/><text x=\"\(x + 4)\" y=\"\(frame.top + 14)\" fill=\"#666\">\(escape(marker.label))</text>\n"
        }
        for (index, s) in series.enumerated() {
            svg += line(
                s, color: s.color ?? palette[index % palette.count], index: index, scale: scale, frame: frame,
                xValue: xValue)
        }
        svg +=
            "<text x=\"\((frame.left + frame.width - frame.right) / 2)\" y=\"\(frame.height - 14)\" text-anchor=\"middle\">"
            + "\(escape(xLabel))</text>\n"
        svg +=
            "<text transform=\"translate(18 \((frame.top + frame.height - frame.bottom) / 2)) rotate(-90)\" "
            + "text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        return svg + "</svg>\n"
    }

    private static func line(
        _ s: Series, color: String, index: Int, scale: Scale, frame: Frame, xValue: (Double) -> String
    ) -> String {
        var svg = "<g class=\"series\" data-series=\"\(escape(s.name))\">\n"
        let band = s.band.filter {
            (!scale.logX || $0.x > 0) && $0.lower.isFinite && $0.upper.isFinite && (!scale.logY || $0.lower > 0)
        }
        .sorted { $0.x < $1.x }
        if band.count >= 2 {
            let upper = band.map { "\(scale.px($0.x)),\(scale.py($0.upper))" }
            let lower = band.reversed().map { "\(scale.px($0.x)),\(scale.py($0.lower))" }
            var fill = "fill=\"\(color)\" fill-opacity=\"0.15\""
            if s.hatched {
                // Diagonal lines instead of a solid tint: an interval too weak to read as a confident band.
                svg +=
                    "<defs><pattern id=\"hatch-\(index)\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
                    + "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"\(color)\" "
                    + "stroke-opacity=\"0.45\" stroke-width=\"2\"/></pattern></defs>\n"
                fill = "fill=\"url(#hatch-\(index))\" class=\"hatched\""
            }
            svg +=
                "<polygon points=\"\((upper + lower).joined(separator: " "))\" \(fill) stroke=\"none\"/>\n"
        } else {
            for b in band {
                let x = scale.px(b.x)
                svg +=
                    "<line x1=\"\(x)\" y1=\"\(scale.py(b.lower))\" x2=\"\(x)\" y2=\"\(scale.py(b.upper))\" stroke=\"\(color)\" stroke-opacity=\"0.4\" stroke-width=\"6\"/>\n"
            }
        }
        let points = s.points.enumerated().filter {
            (!scale.logX || $0.element.x > 0) && $0.element.y.isFinite && (!scale.logY || $0.element.y > 0)
        }
        .sorted { $0.element.x < $1.element.x }
        let path = points.map { "\(scale.px($0.element.x)),\(scale.py($0.element.y))" }.joined(separator: " ")
        svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
        for (offset, p) in points {
            let fill = s.hollow.contains(offset) ? "white" : color
            svg +=
                "<circle cx=\"\(scale.px(p.x))\" cy=\"\(scale.py(p.y))\" r=\"3\" fill=\"\(fill)\" stroke=\"\(color)\" "
                + "data-x=\"\(p.x)\" data-y=\"\(p.y)\"><title>\(escape(s.name)): \(escape(xValue(p.x))) → "
                + "\(String(format: "%.6g", p.y))</title></circle>"
        }
        for missing in s.missing where !scale.logX || missing.x > 0 {
            let x = scale.px(missing.x), y = frame.height - frame.bottom - 8
            svg +=
                "<g class=\"unsupported\"><path d=\"M\(x - 5) \(y - 5) L\(x + 5) \(y + 5) M\(x - 5) \(y + 5) L\(x + 5) \(y - 5)\" "
                + "stroke=\"\(color)\" stroke-width=\"2\"/><title>\(escape(s.name)): \(escape(xValue(missing.x))) not "
                + "computed: \(escape(missing.reason))</title></g>"
        }
        let ly = frame.top + 10 + Double(index) * 18
        let lx = frame.width - frame.right
        svg +=
            "\n<line x1=\"\(lx + 12)\" y1=\"\(ly)\" x2=\"\(lx + 32)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
        svg += "<text x=\"\(lx + 38)\" y=\"\(ly + 4)\" class=\"legend\">\(escape(s.name))</text>\n</g>\n"
        return svg
    }

    /// The start of every chart's document: size, white background, the title in bold at `left`, and the note under
    /// it.
    static func head(width: Double, height: Double, left: Double, title: String, note: String?) -> String {
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        if let note {
            svg += "<text x=\"\(left)\" y=\"42\" font-size=\"11\" fill=\"#555\" class=\"note\">\(escape(note))</text>\n"
        }
        return svg
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Round tick values in `[low, high]`: on a log axis powers of two (`base2`) or 1, 2, 5 × 10^k; on a linear
    /// axis multiples of 1, 2 or 5 × 10^k, about five of them.
    public static func ticks(low: Double, high: Double, log: Bool, base2: Bool = false) -> [Double] {
        guard low.isFinite, high.isFinite, high >= low else { return [] }
        if log {
            guard low > 0 else { return [] }
            if base2 {
                let first = Int(Foundation.log2(low * 0.999).rounded(.up))
                let last = max(first, Int(Foundation.log2(high * 1.001).rounded(.down)))
                var step = 1
                while (last - first) / step > 8 { step *= 2 }
                return stride(from: first, through: last, by: step).map { exp2(Double($0)) }
            }
            let decades = Int(Foundation.log10(low).rounded(.down))...Int(Foundation.log10(high).rounded(.up))
            let choices: [[Double]] = [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]
            var values: [Double] = []
            for mantissas in choices {
                values = []
                for k in decades {
                    for m in mantissas {
                        let value: Double = m * pow(10, Double(k))
                        if value >= low * 0.999, value <= high * 1.001 { values.append(value) }
                    }
                }
                if values.count >= 3 { break }
            }
            if values.count >= 2 { return values }
            return ticks(low: low, high: high, log: false)  // a narrow range: round values of the linear kind
        }
        let raw = (high - low) / 5
        guard raw > 0 else { return [low] }
        let magnitude = pow(10, (Foundation.log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        return stride(from: (low / step).rounded(.up) * step, through: high + step * 1e-9, by: step).map { $0 }
    }

    /// A tick label: whole numbers plain, others to three significant digits.
    public static func format(_ v: Double) -> String {
        if v == 0 { return "0" }  // never "-0" (a tick computed as -0.0)
        if v >= 1000 || v == v.rounded() { return String(format: "%.0f", v) }
        return v >= 10 ? String(format: "%.1f", v) : String(format: "%.3g", v)
    }
}

/// The drawing area.
struct Frame {
    var width, height, left, right, top, bottom: Double
    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
}

/// Data ranges to pixels: log₂ or linear x, linear or log₁₀ y, with 8 % padding on y (and on a linear x).
struct Scale {
    var x0, x1, y0, y1: Double
    var logX: Bool
    var logY: Bool
    var frame: Frame

    init(xs: [Double], ys: [Double], logX: Bool = true, logY: Bool, frame: Frame) {
        let lx = xs.map { logX ? log2($0) : $0 }, ly = ys.map { logY ? log10($0) : $0 }
        (x0, x1) = (lx.min() ?? 0, lx.max() ?? 1)
        (y0, y1) = (ly.min() ?? 0, ly.max() ?? 1)
        if x1 - x0 < 1e-9 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.08
        (y0, y1) = (y0 - pad, y1 + pad)
        if !logX {
            let padX = (x1 - x0) * 0.04
            (x0, x1) = (x0 - padX, x1 + padX)
        }
        self.logX = logX
        self.logY = logY
        self.frame = frame
    }

    func px(_ x: Double) -> Double { frame.left + ((logX ? log2(x) : x) - x0) / (x1 - x0) * frame.plotWidth }
    func py(_ y: Double) -> Double {
        frame.height - frame.bottom - ((logY ? log10(y) : y) - y0) / (y1 - y0) * frame.plotHeight
    }

    func gridAndTicks() -> String {
        var svg = ""
        let xTicks =
            logX
            ? Plot.ticks(low: exp2(x0), high: exp2(x1), log: true, base2: true)
            : Plot.ticks(low: x0, high: x1, log: false)
        for x in xTicks {
            let p = px(x)
            svg +=
                "<line x1=\"\(p)\" y1=\"\(frame.top)\" x2=\"\(p)\" y2=\"\(frame.height - frame.bottom)\" stroke=\"#eee\"/>"
            svg +=
                "<text x=\"\(p)\" y=\"\(frame.height - frame.bottom + 16)\" text-anchor=\"middle\">\(Plot.format(x))</text>\n"
        }
        let (low, high) = logY ? (pow(10, y0), pow(10, y1)) : (y0, y1)
        for y in Plot.ticks(low: low, high: high, log: logY) {
            let p = py(y)
            svg +=
                "<line x1=\"\(frame.left)\" y1=\"\(p)\" x2=\"\(frame.width - frame.right)\" y2=\"\(p)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(frame.left - 6)\" y=\"\(p + 4)\" text-anchor=\"end\">\(Plot.format(y))</text>\n"
        }
        return svg
    }
}

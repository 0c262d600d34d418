import Foundation

extension Plot {
    /// One cell of a heatmap: its value in 0…1 (nil: not measured) and the text a hover shows.
    public struct HeatCell: Sendable {
        public var value: Double?
        /// Shown inside the cell ("7/10").
        public var label: String
        /// The `<title>`: exact values on hover.
        public var detail: String

        public init(value: Double?, label: String, detail: String) {
            self.value = value
            self.label = label
            self.detail = detail
        }
    }

    /// A self-contained SVG heatmap: `rows` (top to bottom) × `columns`, each cell coloured by its value from white
    /// (0) to dark blue (1), grey when not measured, with its label inside and its detail as a `<title>`.
    /// `cells[r][c]` is row `r`, column `c`.
    public static func heatmap(
        title: String, rowLabel: String, columnLabel: String, rows: [String], columns: [String],
        cells: [[HeatCell]], note: String? = nil
    ) -> String {
        let cellWidth = 78.0
        let cellHeight = 30.0
        let left = 90.0
        let top = note == nil ? 58.0 : 74.0
        let width = left + cellWidth * Double(columns.count) + 30
        let height = top + cellHeight * Double(rows.count) + 50
        var svg = head(width: width, height: height, left: 16, title: title, note: note)
        for (index, column) in columns.enumerated() {
            let x = left + cellWidth * (Double(index) + 0.5)
            svg += "<text x=\"\(x)\" y=\"\(top - 8)\" text-anchor=\"middle\">\(escape(column))</text>\n"
        }
        for (r, row) in rows.enumerated() {
            let y = top + cellHeight * Double(r)
            svg +=
                "<text x=\"\(left - 8)\" y=\"\(y + cellHeight / 2 + 4)\" text-anchor=\"end\">\(escape(row))</text>\n"
            for (c, cell) in cells[r].enumerated() {
                let x = left + cellWidth * Double(c)
                let fill = cell.value.map(Self.blue) ?? "#dddddd"
                let ink = (cell.value ?? 0) > 0.55 ? "white" : "black"
                svg += "<g class=\"cell\" data-row=\"\(escape(row))\" data-column=\"\(escape(columns[c]))\""
                svg += cell.value.map { " data-value=\"\($0)\"" } ?? ""
                svg += "><title>\(escape(cell.detail))</title>"
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellWidth - 2)\" height=\"\(cellHeight - 2)\" "
                svg += "fill=\"\(fill)\" stroke=\"#bbbbbb\"/>"
                svg += "<text x=\"\(x + cellWidth / 2 - 1)\" y=\"\(y + cellHeight / 2 + 4)\" text-anchor=\"middle\" "
                svg += "fill=\"\(ink)\">\(escape(cell.label))</text></g>\n"
            }
        }
        let bottom = top + cellHeight * Double(rows.count)
        svg += "<text x=\"\(left + cellWidth * Double(columns.count) / 2)\" y=\"\(bottom + 22)\" "
        svg += "text-anchor=\"middle\">\(escape(columnLabel))</text>\n"
        svg += "<text x=\"16\" y=\"\(top + cellHeight * Double(rows.count) / 2)\" text-anchor=\"middle\" "
        svg += "transform=\"rotate(-90 16 \(top + cellHeight * Double(rows.count) / 2))\">\(escape(rowLabel))</text>\n"
        return svg + "</svg>\n"
    }

    /// White (0) to #08306b (1), linearly in RGB.
    static func blue(_ value: Double) -> String {
        let t = min(max(value, 0), 1)
        let (r, g, b) = (255 - t * (255 - 8), 255 - t * (255 - 48), 255 - t * (255 - 107))
        return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
    }
}

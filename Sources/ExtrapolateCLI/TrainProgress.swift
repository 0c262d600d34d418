import Foundation
import Training

/// Progress on a terminal (one line rewritten in place: step, loss, tokens/s, ETA), plain log lines otherwise.
final class Progress {
    let total: Int
    let start: Int
    let terminal = isatty(STDERR_FILENO) != 0
    var lastPrinted = Date.distantPast
    var lastLine: StepLine?

    init(total: Int, start: Int) {
        self.total = total
        self.start = start
    }

    func show(_ line: StepLine) {
        lastLine = line
        let done = line.step - start
        let eta = done > 0 ? line.seconds / Double(done) * Double(total - line.step) : 0
        let text = String(
            format: "step %d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %@", line.step, total, line.loss,
            line.learningRate, line.gradientNorm, line.tokensPerSecond, Self.duration(eta))
        if terminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
        } else if line.step == total || Date().timeIntervalSince(lastPrinted) >= 10 || line.step == start + 1 {
            FileHandle.standardError.write(Data((text + "\n").utf8))
            lastPrinted = Date()
        }
    }

    func finish() {
        if terminal, lastLine != nil { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}

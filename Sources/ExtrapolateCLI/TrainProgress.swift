import Foundation
import Reports
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

/// TensorBoard scalars of a training run (`--tensorboard`): one event file in the run folder, written as steps end
/// (`train/loss`, `train/learning_rate`, `train/gradient_norm`, `train/tokens_per_second`), so `tensorboard --logdir`
/// on the runs shows training beside the extrapolation scalars `extrapolate export tensorboard` writes. A resumed run
/// starts a new file; TensorBoard drops the first file's steps past the resumed one.
final class TrainingScalars {
    let handle: FileHandle
    let path: String

    init(folder: String) throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        path = (folder as NSString).appendingPathComponent(
            "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).extrapolate-train")
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CommandError("--tensorboard: cannot create \(path) (\(String(cString: strerror(errno))))")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: TensorBoardEvents.fileVersion(wallTime: Date().timeIntervalSince1970))
    }

    private var failed = false

    /// Appends a step's scalars; a failed write (a full disk) is said once and the run goes on without them.
    func write(_ line: StepLine) {
        guard !failed else { return }
        let values: [(tag: String, value: Float)] = [
            ("train/loss", Float(line.loss)), ("train/learning_rate", Float(line.learningRate)),
            ("train/gradient_norm", Float(line.gradientNorm)), ("train/tokens_per_second", Float(line.tokensPerSecond)),
        ]
        do {
            try handle.write(
                contentsOf: TensorBoardEvents.scalars(
                    wallTime: Date().timeIntervalSince1970, step: line.step, values: values))
        } catch {
            failed = true
            FileHandle.standardError.write(
                Data(
                    "\nwarning: --tensorboard: cannot write \(path) (\(error.localizedDescription)); training goes on without it\n"
                        .utf8))
        }
    }
}

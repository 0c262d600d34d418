import Architecture
import Checkpoints
import Engine
import Evaluation
import Foundation
import Kernels

/// `train-state.safetensors`: what `--resume` needs to continue bit for bit. Tensors `p.<i>`, `m.<i>` and `v.<i>`:
/// the fp32 parameters as the engine holds them (bound layout, so nothing is rounded on the way back) and AdamW's
/// moments, in `BoundModel.parameterBuffers` order; metadata: the architecture, the settings, the step, and the
/// data order's state.
struct SavedState {
    var architecture: Architecture
    var settings: TrainingSettings
    var step: Int
    var generator: UInt64
    var cursor: Int
    var parameters: [[Float]]
    var first: [[Float]]
    var second: [[Float]]

    static let settingsKey = "extrapolate.trainingSettings"

    static func read(_ path: String) throws(TrainingError) -> SavedState {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw .checkpoint(error) }
        func value(_ key: String) throws(TrainingError) -> String {
            guard let value = file.metadata[key] else {
                throw .refused("\(path): no '\(key)' in its metadata; it was not written by extrapolate train")
            }
            return value
        }
        let architecture: Architecture
        do {
            architecture = try Architecture.decode(
                json: Data(try value(CheckpointLocation.architectureMetadataKey).utf8), path: path)
        } catch let error as TrainingError { throw error } catch {
            throw .refused("\(path): \(error)")
        }
        let settings: TrainingSettings
        do { settings = try JSONDecoder().decode(TrainingSettings.self, from: Data(try value(settingsKey).utf8)) } catch
        {
            throw .refused("\(path): the settings in its metadata cannot be read: \(error)")
        }
        guard let step = Int(try value("extrapolate.step")), let generator = UInt64(try value("generator")),
            let cursor = Int(try value("cursor"))
        else { throw .refused("\(path): its step, generator or cursor is not a number") }
        var parts: [String: [Float]] = [:]
        for info in file.tensors {
            var values = [Float](repeating: 0, count: info.count)
            do {
                try values.withUnsafeMutableBufferPointer { (buffer) throws(CheckpointError) in
                    try file.convert(info, into: buffer.baseAddress!)
                }
            } catch { throw .checkpoint(error) }
            parts[info.name] = values
        }
        func series(_ prefix: String) -> [[Float]] {
            var result: [[Float]] = []
            while let values = parts["\(prefix).\(result.count)"] { result.append(values) }
            return result
        }
        return SavedState(
            architecture: architecture, settings: settings, step: step, generator: generator, cursor: cursor,
            parameters: series("p"), first: series("m"), second: series("v"))
    }
}

extension TrainingRun {
    func saveState() throws(TrainingError) {
        let parameters = model.bound.parameterBuffers.map(\.buffer)
        let moments = trainer.optimizer.moments
        var tensors: [(String, [Int], FloatBuffer)] = []
        for (index, buffer) in parameters.enumerated() { tensors.append(("p.\(index)", [buffer.count], buffer)) }
        for (index, moment) in moments.enumerated() {
            tensors.append(("m.\(index)", [moment.first.count], moment.first))
            tensors.append(("v.\(index)", [moment.second.count], moment.second))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let settingsJSON: String
        let architectureJSON: String
        do {
            settingsJSON = String(decoding: try encoder.encode(settings), as: UTF8.self)
            architectureJSON = String(decoding: try model.architecture.canonicalJSON(), as: UTF8.self)
        } catch { throw .refused("the run's settings cannot be written as JSON: \(error)") }
        let metadata = [
            CheckpointLocation.architectureMetadataKey: architectureJSON, SavedState.settingsKey: settingsJSON,
            "extrapolate.step": "\(step)", "generator": "\(generator.state)", "cursor": "\(cursor)",
        ]
        try Self.write(tensors, metadata: metadata, to: (folder as NSString).appendingPathComponent(Self.stateFile))
    }

    /// Puts the saved parameters, moments, step and data order in place, and cuts `train.jsonl` back to the step.
    func restore(_ state: SavedState) throws(TrainingError) {
        let parameters = model.bound.parameterBuffers.map(\.buffer)
        let moments = trainer.optimizer.moments
        guard state.parameters.count == parameters.count, state.first.count == moments.count,
            state.second.count == moments.count,
            zip(state.parameters, parameters).allSatisfy({ $0.count == $1.count })
        else {
            throw .refused(
                "\(folder)/\(Self.stateFile) does not fit the model it describes (\(state.parameters.count) "
                    + "parameter tensors for \(parameters.count)); it was written by another version")
        }
        for index in parameters.indices {
            parameters[index].pointer.update(from: state.parameters[index], count: parameters[index].count)
            moments[index].first.pointer.update(from: state.first[index], count: moments[index].first.count)
            moments[index].second.pointer.update(from: state.second[index], count: moments[index].second.count)
        }
        trainer.optimizer.restore(step: state.step)
        restoreProgress(step: state.step, generator: state.generator, cursor: state.cursor)
        let log = (folder as NSString).appendingPathComponent(Self.logFile)
        // No log yet: nothing to cut.
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return }
        let decoder = JSONDecoder()
        let kept = text.split(separator: "\n").filter { line in
            // A torn last line (killed mid-write) decodes to nothing and is dropped.
            ((try? decoder.decode(StepLine.self, from: Data(line.utf8)))?.step ?? .max) <= state.step
        }
        do {
            try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(
                toFile: log, atomically: true, encoding: .utf8)
        } catch {
            throw .refused("\(log): cannot rewrite: \(error.localizedDescription)")
        }
    }
}

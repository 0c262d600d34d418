import ArgumentParser
import Checkpoints
import Foundation
import Training

/// The form of the checkpoints `extrapolate train` writes.
enum CheckpointFormat: String, ExpressibleByArgument, CaseIterable {
    case auto, safetensors, hf
}

extension Extrapolate.Train {
    /// The run's settings from the command line.
    func trainingSettings() throws -> TrainingSettings {
        var settings = TrainingSettings(steps: steps ?? 1)
        settings.length = length
        settings.batch = batch
        settings.accumulation = accumulate
        settings.seed = seed
        settings.order = order
        settings.saveEvery = saveEvery
        settings.optimizer.learningRate = learningRate
        settings.optimizer.minimumLearningRate = minLearningRate
        settings.optimizer.warmup = warmup
        settings.optimizer.weightDecay = weightDecay
        settings.optimizer.beta1 = beta1
        settings.optimizer.beta2 = beta2
        settings.optimizer.clip = clip > 0 ? clip : nil
        switch format {
        case .safetensors: break
        case .auto: settings.huggingFaceConfig = huggingFaceConfig()
        case .hf:
            guard let config = huggingFaceConfig() else {
                throw CommandError(
                    "--format hf needs a Hugging Face config.json: --architecture config.json (or its folder), or "
                        + "--checkpoint of a Hugging Face folder")
            }
            settings.huggingFaceConfig = config
        }
        return settings
    }

    /// The text of the Hugging Face config.json the model comes from: `--architecture` naming one (or a folder
    /// holding one), or `--checkpoint` of a Hugging Face folder (weights that carry no architecture of their own).
    func huggingFaceConfig() -> String? {
        var path: String
        if let architecture {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: architecture, isDirectory: &isDirectory)
            path = exists && isDirectory.boolValue ? architecture + "/config.json" : architecture
        } else if let checkpoint,
            // An unreadable checkpoint is reported, with its reason, when the run loads it just after this.
            let location = try? CheckpointLocation.discover(checkpoint), let config = location.config,
            location.architectureFile == nil,
            (try? location.open().metadata[CheckpointLocation.architectureMetadataKey]) == nil
        {
            path = config
        } else {
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path),
            // Not JSON, or not a config.json: the architecture loader says why when it reads the same file.
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], object["model_type"] != nil
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

import Foundation
import Logging
import Reports
import ResultStore
import ServiceLifecycle

/// Writes the nightly report at the configured local time, then runs the notify command with its folder.
public struct ReportScheduler: Service {
    let settings: ReportSettings
    let schedule: TimeOfDay
    let store: any ResultStore
    let folder: String
    let logger: Logger

    /// Reports of `store` into `folder` every day at `schedule`.
    public init(settings: ReportSettings, schedule: TimeOfDay, store: any ResultStore, folder: String, logger: Logger) {
        self.settings = settings
        self.schedule = schedule
        self.store = store
        self.folder = folder
        self.logger = logger
    }

    public func run() async throws {
        logger.info(
            "nightly report scheduled",
            metadata: ["time": "\(String(format: "%02d:%02d", schedule.hour, schedule.minute))", "folder": "\(folder)"])
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let next = schedule.next(after: Date())
            // Sleep in short steps so a shutdown is noticed at once and a clock change within a minute.
            while Date() < next {
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                try? await Task.sleep(for: .seconds(min(1, max(next.timeIntervalSinceNow, 0.01))))
            }
            await Self.write(settings: settings, store: store, folder: folder, logger: logger)
        }
    }

    /// Writes a report now and runs the notify command; failures are logged, never fatal.
    public static func write(
        settings: ReportSettings, store: any ResultStore, folder: String, logger: Logger
    ) async {
        do {
            let report = try NightlyReport.write(
                to: folder, rows: try await store.results(run: nil).map(StoredResultsReport.Row.init),
                status: try await store.status(), thresholds: settings.thresholds)
            logger.info(
                "report written",
                metadata: ["folder": "\(folder)", "alerts": "\(report.result.alerts.count)"])
        } catch {
            logger.error("cannot write the report", metadata: ["folder": "\(folder)", "error": "\(error)"])
            return
        }
        guard let command = settings.notifyCommand else { return }
        let hook = ShellCommand(
            command, arguments: ["extrapolate-notify", folder], environment: ["EXTRAPOLATE_REPORT": folder],
            timeout: settings.notifyTimeout)
        let metadata: Logger.Metadata = ["command": "\(command)", "folder": "\(folder)"]
        do {
            let outcome = try await hook.run { Task.isShuttingDownGracefully || Task.isCancelled }
            switch outcome {
            case .exited(0): logger.info("the notify command ran", metadata: metadata)
            case .interrupted: logger.warning("the notify command was stopped at shutdown", metadata: metadata)
            default:
                logger.warning(
                    "the notify command failed",
                    metadata: metadata.merging(["outcome": "\(outcome)"]) { $1 })
            }
        } catch {
            logger.warning("cannot run the notify command", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }
}

import Foundation

/// A `Date` that moves with the monotonic clock: the wall time when the process first asked, plus the time elapsed
/// since on `ContinuousClock`. The daemon's durations (a file's quiet period, when to rescan, rescue or give up
/// waiting) are measured with it, so a step of the wall clock (NTP, an administrator, a VM resumed) neither stalls
/// them for the size of a step back nor cuts them short by a step forward. Times stored or shown use `Date()`.
public enum SteadyClock {
    private static let origin = (wall: Date(), steady: ContinuousClock.now)

    /// Now, on the steady clock.
    @Sendable public static func now() -> Date {
        let elapsed = origin.steady.duration(to: ContinuousClock.now).components
        return origin.wall.addingTimeInterval(Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
    }
}

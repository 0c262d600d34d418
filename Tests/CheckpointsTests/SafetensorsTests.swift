import Checkpoints
import Foundation
import Testing

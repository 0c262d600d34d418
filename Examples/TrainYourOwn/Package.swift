// swift-tools-version: 6.1
// Declare an architecture in Swift, train it with Extrapolate's Training API, evaluate it with its Evaluation API.
// From the repository root: swift run --package-path Examples/TrainYourOwn
import PackageDescription

let package = Package(
    name: "TrainYourOwn",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Extrapolate", path: "../..")],
    targets: [
        .executableTarget(
            name: "TrainYourOwn",
            dependencies: [
                .product(name: "Architecture", package: "Extrapolate"),
                .product(name: "Training", package: "Extrapolate"),
                .product(name: "Evaluation", package: "Extrapolate"),
            ]
        )
    ]
)

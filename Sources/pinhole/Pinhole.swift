import ArgumentParser

@main
struct Pinhole: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinhole",
        abstract: "A Thumbor-compatible thumbnail service on libvips.",
        subcommands: [Serve.self, Thumbnails.self, Files.self, Doctor.self, Sign.self, Explain.self, Prewarm.self, CacheCommand.self, EncodeCommand.self, ConfigKeys.self,
                      DecodeWorker.self])
}

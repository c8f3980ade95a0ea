//! The `oauthost` command: a few lines over the library's command line.

fn main() -> std::process::ExitCode {
    oauthost::cli::main()
}

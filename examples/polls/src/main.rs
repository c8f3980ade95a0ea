//! `polls`: oauthost's command line plus the polls views, in one database.

fn main() -> std::process::ExitCode {
    oauthost::cli::main_for("polls", &polls::PollsApp)
}

use std::process::ExitCode;

fn main() -> ExitCode {
    relaydeck::cli::main()
}

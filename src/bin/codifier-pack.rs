//! `codifier-pack`: packs a repository to a file or stdout, exactly as `codifier pack` does
//! without `--project` (same options, same output). `codifier pack` hands over to it when it is
//! installed beside `codifier`: it links only the packer, so a pack touches a few MB of code
//! rather than pages all over the server's executable.

use clap::Parser;

/// Pack a repository (URL or local directory) into one AI-readable document, written to a file
/// or stdout.
#[derive(Debug, Parser)]
#[command(name = "codifier-pack", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: codifier::packer::command::PackArgs,
}

fn main() -> std::process::ExitCode {
    use codifier::packer::command;
    let cli = Cli::parse();
    let outcome = command::send_back_if_from_another_build(std::env::args_os().skip(1))
        .and_then(|()| command::write_pack(cli.args));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

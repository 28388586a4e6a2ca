fn main() -> std::process::ExitCode {
    tcp_lab::cli::main()
}

//! The scenarios shipped in assets/scenarios, embedded in the binary.

use super::Scenario;

/// The scenarios shipped in assets/scenarios, built in (an installed binary has no checkout).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "client-closes-first",
        include_str!("../../../../assets/scenarios/client-closes-first.toml"),
    ),
    (
        "server-closes-first",
        include_str!("../../../../assets/scenarios/server-closes-first.toml"),
    ),
    (
        "forgotten-close",
        include_str!("../../../../assets/scenarios/forgotten-close.toml"),
    ),
    (
        "mojong",
        include_str!("../../../../assets/scenarios/mojong.toml"),
    ),
    (
        "half-close",
        include_str!("../../../../assets/scenarios/half-close.toml"),
    ),
    (
        "abort-rst",
        include_str!("../../../../assets/scenarios/abort-rst.toml"),
    ),
    (
        "simultaneous-close",
        include_str!("../../../../assets/scenarios/simultaneous-close.toml"),
    ),
    (
        "lost-fin",
        include_str!("../../../../assets/scenarios/lost-fin.toml"),
    ),
    (
        "lost-last-ack",
        include_str!("../../../../assets/scenarios/lost-last-ack.toml"),
    ),
    (
        "time-wait-assassination",
        include_str!("../../../../assets/scenarios/time-wait-assassination.toml"),
    ),
    (
        "time-wait-rfc1337",
        include_str!("../../../../assets/scenarios/time-wait-rfc1337.toml"),
    ),
    (
        "syn-retry",
        include_str!("../../../../assets/scenarios/syn-retry.toml"),
    ),
    (
        "keepalive",
        include_str!("../../../../assets/scenarios/keepalive.toml"),
    ),
    (
        "slow-start",
        include_str!("../../../../assets/scenarios/slow-start.toml"),
    ),
    (
        "fast-retransmit",
        include_str!("../../../../assets/scenarios/fast-retransmit.toml"),
    ),
    (
        "zero-window",
        include_str!("../../../../assets/scenarios/zero-window.toml"),
    ),
];

impl Scenario {
    /// A shipped scenario by name (`lost-fin`), built into the binary.
    pub fn shipped(name: &str) -> Option<Result<Scenario, String>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Scenario::parse(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/scenarios");
        let mut n = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert!(n >= 5);
    }
}
